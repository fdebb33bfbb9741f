import json
from datetime import UTC, datetime, timedelta

import pytest

from gateway.errors import InvalidInput
from gateway.ingest.simjson import decode

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def payload(**fields) -> bytes:
    return json.dumps({"seq": 1, **fields}).encode()


def test_decodes_metrics_with_senml_units_and_device_time():
    decoded = decode(payload(ts="2026-11-22T09:59:59.500Z", temperature=21.5, battery=97), NOW)
    assert decoded.sequence == 1
    assert decoded.time == NOW - timedelta(milliseconds=500)
    assert [(m.name, m.unit, m.value) for m in decoded.data.measurements] == [
        ("temperature", "Cel", 21.5), ("battery", "%EL", 97.0)]


def test_time_is_optional():
    assert decode(payload(humidity=40), NOW).time is None


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "payload is not JSON: Expecting value"),
        (b"not json", "payload is not JSON"),
        (b"\xff\xfe{}", "payload is not UTF-8"),
        (b"[1, 2]", "payload must be a JSON object, got list"),
        (b'{"seq": 1, "temperature": NaN}', "payload contains NaN"),
        (b'{"seq": 1, "temperature": Infinity}', "payload contains Infinity"),
        (b'{"seq": 1, "temperature": 1e999}', "field 'temperature' is not a finite number"),
        (payload(temperature="21"), "field 'temperature' must be a number, got str"),
        (payload(temperature=True), "field 'temperature' must be a number, got bool"),
        (payload(temperature=None), "field 'temperature' must be a number, got NoneType"),
        (payload(temperature={"v": 1}), "field 'temperature' must be a number, got dict"),
        (json.dumps({"temperature": 1}).encode(), "field 'seq' must be a non-negative integer, got None"),
        (payload(seq=-1, temperature=1), "field 'seq' must be a non-negative integer, got -1"),
        (payload(seq=1.5, temperature=1), "field 'seq' must be a non-negative integer"),
        (payload(), "no measurements"),
        (payload(temp=21), "unknown field 'temp'"),
        (payload(temperature=1, ts=12345), "field 'ts' must be an RFC 3339 string, got int"),
        (payload(temperature=1, ts="yesterday"), "field 'ts' is not an RFC 3339 time"),
        (payload(temperature=1, ts="2026-11-22T10:00:00"), "field 'ts' has no UTC offset"),
        (payload(temperature=1, ts="2026-11-22T11:00:00Z"), "field 'ts' is 3600s in the future"),
        (payload(temperature=1, ts="2020-01-01T00:00:00Z"), "field 'ts' is older than 7 days"),
        (b"[" * 100_000 + b"]" * 100_000, "exceeds"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ],
)
def test_rejections_name_the_reason(raw, reason):
    with pytest.raises(InvalidInput) as raised:
        decode(raw, NOW)
    assert reason in raised.value.message


@pytest.mark.parametrize("digits", [400, 5000])
def test_huge_integers_are_rejected_not_raised(digits):
    with pytest.raises(InvalidInput):
        decode(b'{"seq": 1, "temperature": 1' + b"0" * digits + b"}", NOW)
