r"""InfluxDB line protocol encoding with the escaping rules of InfluxDB 1.x and 2.x.

Escaping is what keeps a value from adding tags, fields or points: measurement names
escape commas and spaces; tag keys, tag values and field keys also escape `=`;
string field values escape `"` and `\\`. Line breaks and backslashes have no
reliable escape in names and tags (InfluxDB 1.x unescapes only `\,`, `\ ` and `\=`
there), so they are refused, as is a double quote in a field key, which
InfluxDB's field scanner would take for the start of a string.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache

from ..errors import InvalidInput

FieldValue = float | int | str | bool

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_KEY = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_UNESCAPABLE = re.compile(r"[\n\r\\]")
_NEEDS_ESCAPE = re.compile(r"[,= ]")
_STRING_NEEDS_ESCAPE = re.compile(r'["\\]')


@lru_cache(maxsize=4096)
def _name(value: str, what: str) -> str:
    """A measurement, tag key, tag value or field key, escaped; cached, as the same names recur."""
    if not value or _UNESCAPABLE.search(value):
        raise InvalidInput(f"{what} {value[:64]!r} is empty or contains a line break or backslash")
    if what == "field key" and '"' in value:  # InfluxDB's field scanner would take it for a string's start
        raise InvalidInput(f"field key {value[:64]!r} contains a double quote")
    if not _NEEDS_ESCAPE.search(value):
        return value
    return value.translate(_MEASUREMENT if what == "measurement" else _KEY)


def _field_value(key: str, value: FieldValue) -> str:
    if isinstance(value, str):
        if _STRING_NEEDS_ESCAPE.search(value):
            value = value.replace("\\", "\\\\").replace('"', '\\"')  # two C passes beat one translate()
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if not math.isfinite(value):
        raise InvalidInput(f"field {key!r} is not finite")
    return repr(value)


def encode_point(measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], timestamp_ns: int) -> str:
    """One line; tags are sorted by key, as InfluxDB recommends for write performance."""
    if not fields:
        raise InvalidInput(f"point in {measurement!r} has no fields")
    body = ",".join(f"{_name(key, 'field key')}={_field_value(key, value)}" for key, value in fields.items())
    return f"{series_key(measurement, tags)} {body} {timestamp_ns}"


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """The measurement and tag set of a line, escaped, tags sorted by key; an empty tag value is omitted."""
    return _series(measurement, tuple(sorted(tags.items())))


@lru_cache(maxsize=65536)
def _series(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """Measurement and tag set, escaped; cached, as a device's series recur with every reading."""
    head = [_name(measurement, "measurement")]
    head += [f"{_name(key, 'tag key')}={_name(value, 'tag value')}"
             for key, value in tags if value]  # an empty tag value is not allowed: omit the tag
    return ",".join(head)
