r"""InfluxDB line protocol encoding with the escaping rules of InfluxDB 1.x and 2.x.

Escaping is what keeps a value from adding tags, fields or points: measurement names
escape commas and spaces; tag keys, tag values and field keys also escape `=`;
string field values escape `"` and `\\`. Line breaks and backslashes have no
reliable escape in names and tags (InfluxDB 1.x unescapes only `\,`, `\ ` and `\=`
there), so they are refused.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from ..errors import InvalidInput

FieldValue = float | int | str | bool

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_KEY = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_STRING = str.maketrans({'"': r"\"", "\\": "\\\\"})


def _name(value: str, table: dict[int, str], what: str) -> str:
    if not value or any(char in value for char in "\n\r\\"):
        raise InvalidInput(f"{what} {value[:64]!r} is empty or contains a line break or backslash")
    return value.translate(table)


def _field_value(key: str, value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"field {key!r} is not finite")
        return repr(value)
    return '"' + value.translate(_STRING) + '"'


def encode_point(measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], timestamp_ns: int) -> str:
    """One line; tags are sorted by key, as InfluxDB recommends for write performance."""
    if not fields:
        raise InvalidInput(f"point in {measurement!r} has no fields")
    head = _name(measurement, _MEASUREMENT, "measurement")
    for key in sorted(tags):
        if tags[key]:  # an empty tag value is not allowed: omit the tag
            head += f",{_name(key, _KEY, 'tag key')}={_name(tags[key], _KEY, 'tag value')}"
    body = ",".join(f"{_name(key, _KEY, 'field key')}={_field_value(key, value)}" for key, value in fields.items())
    return f"{head} {body} {timestamp_ns}"
