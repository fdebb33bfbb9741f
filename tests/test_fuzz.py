"""Property-based tests (Hypothesis, fixed budget) of the decoders and the line-protocol encoder.

Whatever bytes arrive, a decoder returns a valid result or raises InvalidInput, nothing
else; whatever strings an encoder gets, the line it writes parses back to exactly them.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidInput
from gateway.events import decode_event
from gateway.ingest import simjson
from gateway.sink.lineprotocol import encode_point

BUDGET = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda children: (st.lists(children, max_size=4)
                                      | st.dictionaries(st.text(max_size=10), children, max_size=4)),
                    max_leaves=12)
TELEMETRY = st.dictionaries(
    st.sampled_from(["seq", "ts", "temperature", "humidity", "state", "position", "request", "correlation", "x"]),
    JSON | st.sampled_from(["on", "off", "2026-11-22T09:59:00Z", "01M80GFHQYDP8WG3Q83GJFZCKY"]), max_size=6)


def accepts_or_rejects(decode, payload: bytes) -> None:
    try:
        decode(payload)
    except InvalidInput:
        pass


@BUDGET
@given(st.binary(max_size=300))
def test_telemetry_decoder_on_arbitrary_bytes(payload):
    accepts_or_rejects(lambda p: simjson.decode(p, NOW), payload)


@BUDGET
@given(TELEMETRY)
def test_telemetry_decoder_on_plausible_documents(document):
    accepts_or_rejects(lambda p: simjson.decode(p, NOW), json.dumps(document, allow_nan=True).encode())


@BUDGET
@given(st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v, allow_nan=True).encode()))
def test_event_decoder_on_arbitrary_input(payload):
    accepts_or_rejects(decode_event, payload)


# -- line protocol round trip, through a small reference parser written from the spec --------------
def _split(text: str, separator: str, quotes: bool = False, limit: int = -1) -> list[str]:
    """Split on unescaped `separator`; with `quotes`, not inside a double-quoted string (field values).

    Quotes mean nothing in measurements, tag keys and values, or field keys."""
    parts, current, quoted, escaped = [], "", False, False
    for char in text:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == '"' and quotes:
            current += char
            quoted = not quoted
        elif char == separator and not quoted and len(parts) != limit:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def _unescape(text: str) -> str:
    return re.sub(r"\\([,= \\\"])", r"\1", text)


def parse_line(line: str):
    head, rest = _split(line, " ", limit=1)
    fields, timestamp = _split(rest, " ", quotes=True)
    measurement, *tags = _split(head, ",")
    tag_map = dict(tuple(_unescape(part) for part in _split(tag, "=")) for tag in tags)
    field_map = {}
    for field in _split(fields, ",", quotes=True):
        key, value = _split(field, "=", limit=1)
        field_map[_unescape(key)] = _unescape(value[1:-1]) if value.startswith('"') else value
    return _unescape(measurement), tag_map, field_map, int(timestamp)


NAME = st.text(st.characters(blacklist_characters="\n\r\\", blacklist_categories=("Cs",)), min_size=1, max_size=12)


@BUDGET
@given(NAME, st.dictionaries(NAME, NAME, max_size=3),
       st.dictionaries(NAME, st.text(max_size=30), min_size=1, max_size=3))
def test_encoded_lines_parse_back_to_exactly_what_was_encoded(measurement, tags, fields):
    try:
        line = encode_point(measurement, tags, fields, 1)
    except InvalidInput:
        return
    parsed_measurement, parsed_tags, parsed_fields, timestamp = parse_line(line)
    assert parsed_measurement == measurement and parsed_tags == tags and timestamp == 1
    assert parsed_fields == fields  # no value added a tag, a field or a point
