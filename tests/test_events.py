import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from gateway.errors import InvalidInput
from gateway.events import (
    BUILT_IN_TYPES,
    ActuationRequestedV1,
    ActuatorChangedV1,
    AlertClearedV1,
    AlertRaisedV1,
    AlertRaisedV2,
    DeviceDiscoveredV1,
    DeviceOfflineV1,
    DeviceOnlineV1,
    DeviceThrottledV1,
    EnergyMeasuredV1,
    Event,
    EventRejectedV1,
    Measurement,
    ReadingV1,
    _ulid,
    decode_event,
    new_event,
    new_event_id,
)
from gateway.history import HistoryQuery
from reactors.threshold import ThresholdRule

READING = ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=21.5)])
SAMPLES = [
    READING,
    AlertRaisedV1(alert="temperature.high", metric="temperature", value=29.0, limit=28.0, unit="Cel", above_seconds=3),
    AlertRaisedV2(alert="temperature.high", metric="temperature", value=29.0, limit=28.0, unit="Cel", above_seconds=3,
                  severity="critical", rule="temperature > 28 for 3s"),
    AlertClearedV1(alert="temperature.high", metric="temperature", value=26.0, limit=27.0, unit="Cel"),
    ActuationRequestedV1(state="on", reason="temperature.high in lab"),
    ActuatorChangedV1(position=40, room="lab"),
    DeviceOnlineV1(),
    DeviceOfflineV1(),
    DeviceOfflineV1(reason="silent", silent_seconds=30),
    DeviceThrottledV1(phase="continuing", shed=1200, shed_total=5000, rate=5.0, burst=20, room="lab"),
    DeviceDiscoveredV1(profile="tasmota", native="sonoff-x", announced="tele/sonoff-x/SENSOR",
                       topic="tele/sonoff-x/SENSOR"),
    EnergyMeasuredV1(period_start=datetime(2026, 1, 1, 8, tzinfo=UTC),
                     period_end=datetime(2026, 1, 1, 9, tzinfo=UTC), energy_wh=412.5),
    EventRejectedV1(reason="bad", rejected_by="gateway/ingest", topic="devices/x/telemetry", excerpt="{"),
]


def reading_json(**changes) -> bytes:
    document = json.loads(new_event(READING, source="device/temp-1", subject="temp-1", sequence=1).to_json())
    document.update(changes)
    return json.dumps(document).encode()


def test_every_event_type_has_a_sample():
    assert {sample.event_type for sample in SAMPLES} == set(BUILT_IN_TYPES)


@pytest.mark.parametrize("data", SAMPLES, ids=lambda d: d.event_type)  # ids repeat for a type's variants
def test_round_trip_keeps_every_attribute(data):
    event = new_event(data, source="gateway/ingest", subject="temp-1", sequence=7)
    decoded = decode_event(event.to_json())
    assert decoded == event
    assert type(decoded.data) is type(data)


def test_envelope_is_structured_cloudevents_json():
    document = json.loads(new_event(READING, source="device/temp-1", subject="temp-1").to_json())
    assert document["specversion"] == "1.0"
    assert document["type"] == "reading.v1"
    assert document["time"].endswith("Z")
    assert document["correlationid"] == document["id"]
    assert "causationid" not in document


def test_caused_event_inherits_correlation_and_names_its_cause():
    root = new_event(READING, source="device/temp-1", subject="temp-1")
    alert = new_event(SAMPLES[1], source="reactor/threshold", subject="temp-1", cause=root)
    follow_up = new_event(SAMPLES[2], source="reactor/threshold", subject="temp-1", cause=alert)
    assert alert.causationid == root.id and alert.correlationid == root.id
    assert follow_up.causationid == alert.id and follow_up.correlationid == root.id


def test_a_cause_known_only_by_ids_links_the_same_way():
    root = new_event(READING, source="device/temp-1", subject="temp-1")
    changed = new_event(ActuatorChangedV1(state="on"), source="device/fan-1", subject="fan-1",
                        caused_by=("01M80GFHQYDP8WG3Q83GJFZCKY", root.id))
    assert (changed.causationid, changed.correlationid) == ("01M80GFHQYDP8WG3Q83GJFZCKY", root.id)


def test_actuator_states_need_something_to_set_and_positions_are_percentages():
    with pytest.raises(ValueError, match="needs a state or a position"):
        ActuatorChangedV1()
    with pytest.raises(ValueError):
        ActuationRequestedV1(position=101, reason="x")
    with pytest.raises(ValueError):
        ActuationRequestedV1(state="half", reason="x")


def test_ids_are_unique_and_sortable_by_time():
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 for i in ids)
    first, later = ids[0], new_event_id()
    assert first[:10] <= later[:10]  # the first 10 characters are the millisecond timestamp


@pytest.mark.parametrize("milliseconds, entropy, expected", [
    (1469918176385, bytes(10), "01ARYZ6S410000000000000000"),  # the ULID specification's timestamp
    (0, b"\xff" * 10, "0000000000ZZZZZZZZZZZZZZZZ"),
    (2**48 - 1, bytes(9) + b"\x1f", "7ZZZZZZZZZ000000000000000Z"),
])
def test_ulids_spell_timestamp_and_entropy_in_crockford_base32(milliseconds, entropy, expected):
    assert _ulid(milliseconds, entropy) == expected


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{", "Invalid JSON"),
        (b"[]", "Input should be an object"),
        (reading_json(type="reading.v9"), "unknown event type 'reading.v9'"),
        (reading_json(subject="temp/1"), "subject: String should match pattern"),
        (reading_json(subject="#"), "subject: String should match pattern"),
        (reading_json(time="2026-11-22T10:00:00"), "time: time must carry a UTC offset"),
        (reading_json(specversion="0.3"), "specversion"),
        (reading_json(extra="x"), "extra: Extra inputs are not permitted"),
        (reading_json(sequence=-1), "sequence: Input should be greater than or equal to 0"),
        (reading_json(data={"measurements": []}), "data.measurements: List should have at least 1 item"),
        (reading_json(data={"measurements": [{"name": "temperature", "unit": "K", "value": 1}]}),
         "unknown SenML unit 'K'"),
        (reading_json(data={"measurements": [{"name": "temperature", "unit": "Cel", "value": "hot"}]}),
         "value: Input should be a valid number"),
        (reading_json().replace(b"21.5", b"NaN"), "finite number"),
        (reading_json().replace(b"21.5", b"1e999"), "finite number"),
    ],
)
def test_invalid_events_are_rejected_with_a_specific_reason(payload, reason):
    with pytest.raises(InvalidInput) as raised:
        decode_event(payload)
    assert reason in raised.value.message


def test_time_is_normalised_to_utc():
    plus_two = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    event = new_event(READING, source="device/temp-1", subject="temp-1", time=plus_two)
    assert event.time.utcoffset() == timedelta(0) and event.time.hour == 10
    assert isinstance(event, Event)


def test_a_decoded_time_is_in_utc():
    decoded = decode_event(reading_json(time="2026-01-01T12:00:00+02:00")).time
    assert decoded == datetime(2026, 1, 1, 10, tzinfo=UTC) and decoded.tzinfo is UTC


def test_rejected_excerpt_is_bounded_and_printable():
    excerpt = EventRejectedV1.excerpt_of(b"\xff" * 5000)
    assert len(excerpt) == EventRejectedV1.EXCERPT_LIMIT
    assert set(excerpt) == {"\ufffd"}


@pytest.mark.parametrize(
    "name, valid",
    [("temperature", True), ("co2", True), ("a" * 32, True),
     ("Temperature", False), ("2nd", False), ("a" * 33, False), ("temp'", False), ("temp.high", False)],
)
def test_one_metric_name_rule_for_readings_alerts_rules_and_history_queries(name, valid):
    assert _accepted(lambda: Measurement(name=name, unit="Cel", value=1.0)) is valid
    assert _accepted(lambda: AlertClearedV1(alert="x", metric=name, value=1.0, limit=1.0, unit="Cel")) is valid
    assert _accepted(lambda: ThresholdRule(metric=name)) is valid
    assert _accepted(lambda: HistoryQuery(metric=name).influxql()) is valid


def _accepted(build) -> bool:
    try:
        build()
    except (ValidationError, InvalidInput):
        return False
    return True
