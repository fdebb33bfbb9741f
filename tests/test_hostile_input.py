"""Hostile input: one table, fed to every service that reads the row's topic (ingest, each reactor, the sink).

Each row is one message on one topic. Every service that reads the topic (READERS) turns
it into exactly one `event.rejected.v1` whose reason contains the row's words or, for a
row without a reason, accepts it; the next valid message is handled as usual. Here the
services run in memory; tests/integration/test_hostile_input.py sends the same table
through the real broker to the services as OS processes and checks InfluxDB: one stored
rejection per reader, and the accepted rows stored exactly.
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from gateway.events import (
    ActuationRequestedV1,
    AlertRaisedV1,
    DeviceOfflineV1,
    Event,
    EventRejectedV1,
    Measurement,
    ReadingV1,
    decode_event,
    new_event,
    utc_now,
)
from gateway.fleet import Registry
from gateway.ingest.service import SPEC as INGEST_SPEC
from gateway.ingest.service import Ingest
from gateway.plugins import build_reactor as build_installed
from gateway.plugins import reactor_names
from gateway.reactor import spec_of
from gateway.settings import load_settings
from gateway.sink.service import SPEC as SINK_SPEC
from gateway.sink.service import Sink
from gateway.sink.spool import Spool
from gateway.testing import ReactorHarness
from gateway.topics import matches
from gateway.transport import ClientConfig, Delivery, MemoryBroker, MemoryTransport, Message
from reactors import climate

READERS = {  # topic prefix -> the services that read it (README.md, the flow diagram)
    "devices/": ("ingest",),
    "events/reading.v1/": ("threshold", "availability", "door", "energy", "anomaly", "sink"),
    "events/alert.raised.v1/": ("climate", "sink"),
    "events/device.offline.v1/": ("availability", "sink"),
    "events/actuation.requested.v1/": ("ingest", "sink"),  # ingest: for the causation of profile actuators
    "events/event.rejected.v1/": ("sink",),
}
NOW = utc_now()
# 20 days ahead: the reasons below ('is 17...s in the future') hold for hours after NOW was taken
LATER = (NOW + timedelta(days=20)).isoformat()
HOSTILE_TEXT = ('comma, space =equals "quote" \\backslash\\ new\nline \r\t tab température 🌡️ 温度 \u2028 '
                '\x01\x1f\x7f end\\')
HUGE = 250_000  # bytes: near the broker's max_packet_size of 262,144
DROP = object()
VALUE = "data.measurements.0.value"


def readers(topic: str) -> tuple[str, ...]:
    return next(names for prefix, names in READERS.items() if topic.startswith(prefix))


@dataclass(frozen=True)
class Row:
    name: str  # the row's device id or subject (its topic names it, so its rejections can be found)
    topic: str
    payload: bytes
    reason: str | None  # how every reader's rejection reason starts; None: accepted and stored exactly
    wire: bool = True  # False: the broker refuses the message itself, so only the memory test sends it


def telemetry(name: str, payload: dict | bytes, reason: str | None = None, topic: str | None = None) -> Row:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Row(name, topic or f"devices/{name}/telemetry", raw, reason)


VALID_FACTS = {
    "reading.v1": ("device/{}", ReadingV1(site="hq", room="lab", kind="temperature",
                                          measurements=[Measurement(name="temperature", unit="Cel", value=21.5)])),
    "alert.raised.v1": ("reactor/threshold", AlertRaisedV1(alert="temperature.high", metric="temperature", unit="Cel",
                                                           value=29.5, limit=28, above_seconds=3, site="hq",
                                                           room="lab")),
    "device.offline.v1": ("gateway/ingest", DeviceOfflineV1()),
    "actuation.requested.v1": ("reactor/climate", ActuationRequestedV1(state="on", reason="too warm")),
    "event.rejected.v1": ("gateway/ingest", EventRejectedV1(reason="bad", rejected_by="gateway/ingest",
                                                            topic="devices/x/telemetry", excerpt="x")),
}


def fact_document(name: str, type_: str = "reading.v1") -> dict:
    source, data = VALID_FACTS[type_]
    event = new_event(data, source=source.format(name), subject=name, time=NOW, sequence=1)
    return event.model_dump(mode="json", exclude_none=True)


def fact(name: str, reason: str | None = None, changes: dict | None = None, type_: str = "reading.v1",
         on: str | None = None, edit: Callable[[bytes], bytes] | None = None) -> Row:
    """A valid `type_` event about `name` on its topic (or on `on`'s), with `changes` ("data.site": value,
    DROP removes) and `edit` applied to the bytes."""
    document = fact_document(name, type_)
    for path, value in (changes or {}).items():
        *parents, key = path.split(".")
        target = document
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is DROP:
            del target[key]
        else:
            target[int(key) if key.isdigit() else key] = value
    payload = json.dumps(document).encode()
    return Row(name, f"events/{on or type_}/{name}", edit(payload) if edit else payload, reason)


def swap(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    """Replace `old`, which must be in the payload once (a bare "21.5" could also be in the time)."""
    def edit(payload: bytes) -> bytes:
        assert payload.count(old) == 1, f"{old!r} is in the payload {payload.count(old)} times"
        return payload.replace(old, new)
    return edit


def value_as(literal: bytes) -> Callable[[bytes], bytes]:
    """The reading's value written as `literal` (NaN, 1e999, ...), which no JSON encoder writes."""
    return swap(b'"value": 21.5', b'"value": ' + literal)


ROWS = [
    # -- device telemetry and status, read by ingest -------------------------------------------------------
    telemetry("t-not-json", b"{not json", "payload is not JSON"),
    telemetry("t-empty", b"", "payload is not JSON: Expecting value"),
    telemetry("t-array", b"[1, 2]", "payload must be a JSON object, got list"),
    telemetry("t-value-str", {"seq": 1, "temperature": "21.5"}, "field 'temperature' must be a number, got str"),
    telemetry("t-value-bool", {"seq": 1, "temperature": True}, "field 'temperature' must be a number, got bool"),
    telemetry("t-seq-str", {"seq": "5", "temperature": 1}, "field 'seq' must be a non-negative integer, got '5'"),
    telemetry("t-seq-huge", {"seq": 2**70, "temperature": 1}, "field 'seq' is larger than 9223372036854775807"),
    telemetry("t-ts-int", {"seq": 1, "ts": 1767225600, "temperature": 1}, "field 'ts' must be an RFC 3339 string"),
    telemetry("t-no-seq", {"temperature": 1}, "field 'seq' must be a non-negative integer, got None"),
    telemetry("t-no-metric", {"seq": 1}, "no measurements"),
    telemetry("t-unknown-field", {"seq": 1, "temp": 1}, "unknown field 'temp'"),
    telemetry("t-duplicate-key", b'{"seq": 1, "temperature": 1, "temperature": 99}',
              "field 'temperature' appears more than once"),
    telemetry("t-nan", b'{"seq": 1, "temperature": NaN}', "payload contains NaN"),
    telemetry("t-infinity", b'{"seq": 1, "temperature": -Infinity}', "payload contains -Infinity"),
    telemetry("t-1e999", b'{"seq": 1, "temperature": 1e999}', "field 'temperature' is not a finite number"),
    telemetry("t-future", {"seq": 1, "ts": LATER, "temperature": 1}, "field 'ts' is 17"),
    telemetry("t-year-9999", {"seq": 1, "ts": "9999-12-31T23:59:59Z", "temperature": 1}, "field 'ts' is 2"),
    telemetry("t-past", {"seq": 1, "ts": "1970-01-01T00:00:00Z", "temperature": 1}, "field 'ts' is older than 7 days"),
    telemetry("t-no-offset", {"seq": 1, "ts": "2026-01-01T00:00:00", "temperature": 1}, "field 'ts' has no UTC offset"),
    telemetry("t-huge", {"seq": 1, "temperature": 1, "x": "x" * HUGE}, "payload of 250037 bytes exceeds 16384"),
    telemetry("t-deep", b"[" * 8000 + b"]" * 8000, "payload is nested too deeply"),
    telemetry("t-bad-utf8", b'{"seq": 1, "temperature": 1, "\xff": 1}', "payload is not UTF-8: invalid start byte"),
    telemetry("t-control-raw", b'{"seq": 1, "temperature": 1, "a\x01": 1}',
              "payload is not JSON: Invalid control character"),
    telemetry("t-control-key", {"seq": 1, "temperature\u0000": 1}, "unknown field 'temperature\\x00'"),
    telemetry("t-metachar-key", {"seq": 1, 'temp,x=1 "\\': 1}, "unknown field 'temp,x=1 \"\\\\'"),
    telemetry("t-metachar-id", {"seq": 1, "temperature": 1}, "invalid device id 'a,b=c d\"q\\\\'",
              topic='devices/a,b=c d"q\\/telemetry'),
    telemetry("t-unicode-id", {"seq": 1, "temperature": 1}, "invalid device id 'tëst-🌡'",
              topic="devices/tëst-🌡/telemetry"),
    Row("t-control-id", "devices/a\nb/telemetry", b'{"seq": 1, "temperature": 1}', "invalid device id 'a\\nb'",
        wire=False),  # Mosquitto refuses control characters in a topic (malformed packet)
    telemetry("t-state-metachar", {"seq": 1, "state": "on,x=1"},
              "actuator report: state: Input should be 'on' or 'off'"),
    telemetry("t-request-metachar", {"seq": 1, "state": "on", "request": 'a" b=1,c', "correlation": "01M80T4VPB9P0C"},
              "field 'request' must be an event id"),
    telemetry("t-extremes", {"seq": 2**63 - 1, "temperature": 1.7976931348623157e308, "humidity": 5e-324,
                             "power": -1e-300, "battery": 0}),
    Row("t-status-bad", "devices/t-status-bad/status", b"on,line=1 \xff", "status must be 'online' or 'offline'"),
    Row("t-status-online", "devices/t-status-online/status", b"online", None),
    # -- facts, read by the reactors that consume their type, and by the sink ----------------------------
    fact("f-not-json", "Invalid JSON: key must be a string", edit=lambda p: b"{not json"),
    fact("f-empty", "Invalid JSON: EOF while parsing", edit=lambda p: b""),
    fact("f-array", "Input should be an object", edit=lambda p: b"[]"),
    fact("f-value-str", "data.measurements.0.value: Input should be a valid number", {VALUE: "21.5"}),
    fact("f-value-bool", "data.measurements.0.value: Input should be a valid number", {VALUE: True}),
    fact("f-sequence-str", "sequence: Input should be a valid integer", {"sequence": "5"}),
    fact("f-time-int", "time: Input should be a valid datetime", {"time": 1767225600}),
    fact("f-no-subject", "subject: Field required", {"subject": DROP}),
    fact("f-no-type", "type: Field required", {"type": DROP}),
    fact("f-no-data", "data: Field required", {"data": DROP}),
    fact("f-no-measurements", "data.measurements: Field required", {"data.measurements": DROP}),
    fact("f-extra-field", "data.colour: Extra inputs are not permitted", {"data.colour": "red"}),
    fact("f-type-v2", "unknown event type 'reading.v2'", {"type": "reading.v2"}),
    fact("f-type-unknown", "unknown event type 'door.opened.v1'", {"type": "door.opened.v1"}),
    fact("f-specversion", "specversion: Input should be '1.0'", {"specversion": "2.0"}),
    fact("f-type-not-topic", "an event of type alert.raised.v1 about f-type-not-topic does not belong on topic",
         type_="alert.raised.v1", on="reading.v1"),
    fact("f-nan", "data.measurements.0.value: Input should be a finite number", edit=value_as(b"NaN")),
    fact("f-infinity", "data.measurements.0.value: Input should be a finite number", edit=value_as(b"-Infinity")),
    fact("f-1e999", "data.measurements.0.value: Input should be a finite number", edit=value_as(b"1e999")),
    fact("f-bigint", "data.measurements.0.value: Input should be a finite number", edit=value_as(b"9" * 400)),
    fact("f-sequence-huge", "sequence: Input should be less than or equal to 9223372036854775807", {"sequence": 2**70}),
    fact("f-future", "time is 17", {"time": LATER}),
    fact("f-year-9999", "time is 2", {"time": "9999-12-31T23:59:59Z"}),
    fact("f-emitted-9999", "emittedtime is 2", {"emittedtime": "9999-12-31T23:59:59Z"}),
    fact("f-year-1", "time: must not be before 1970", {"time": "0001-01-01T00:00:00Z"}),
    fact("f-no-offset", "time: time must carry a UTC offset", {"time": "2026-01-01T00:00:00"}),
    fact("f-huge", "data.site: String should have at most 64 characters", {"data.site": "x" * HUGE}),
    fact("f-deep", "Invalid JSON: recursion limit exceeded", edit=lambda p: b"[" * 10_000 + b"]" * 10_000),
    fact("f-bad-utf8", "Invalid JSON: invalid unicode code point", edit=swap(b'"hq"', b'"h\xffq"')),
    fact("f-control-raw", "Invalid JSON: control character", edit=swap(b'"hq"', b'"h\x01q"')),
    fact("f-control-subject", "subject: String should match pattern", {"subject": "f\x01"}),
    fact("f-metachar-subject", "subject: String should match pattern", {"subject": 'a,b=c d"\\'}),
    fact("f-metachar-type", "unknown event type 'reading.v1,x=1 y'", {"type": "reading.v1,x=1 y"}),
    fact("f-metachar-causation", "causationid: String should match pattern", {"causationid": "01M80T4VPB9P0CEP0 y=1"}),
    fact("f-metachar-source", "source: String should match pattern", {"source": "device/a b=1"}),
    fact("f-metachar-id", "id: String should match pattern", {"id": '01M80T4VPB9P0CEP0,x="1"'}),
    fact("f-metachar-correlation", "correlationid: String should match pattern",
         {"correlationid": "a b\nc=d,e\\ffffff"}),
    fact("f-metachar-site", "data.site: String should match pattern", {"data.site": "hq,room=x"}),
    fact("f-metachar-room", "data.room: String should match pattern", {"data.room": "lab\n"}),
    fact("f-metachar-kind", "data.kind: String should match pattern", {"data.kind": 'k"=\\'}),
    fact("f-metachar-metric", "data.measurements.0.name: String should match pattern",
         {"data.measurements.0.name": "temp erature"}),
    fact("f-metachar-unit", "data.measurements.0.unit: unknown SenML unit 'Cel,x=1'",
         {"data.measurements.0.unit": "Cel,x=1"}),
    fact("f-unicode-site", "data.site: String should match pattern", {"data.site": "températ🌡"}),
    fact("f-sequence-max", None, {"sequence": 2**63 - 1, VALUE: 1.7976931348623157e308}),
    fact("f-year-2000", None, {"time": "2000-01-01T00:00:00.123456Z"}),
    fact("f-padded", None, edit=lambda p: b" " * HUGE + p),
    fact("a-metachar-alert", "data.alert: String should match pattern", {"data.alert": "temperature.high x=1"},
         type_="alert.raised.v1"),
    fact("a-nan-duration", "data.above_seconds: Input should be a finite number", type_="alert.raised.v1",
         edit=swap(b'"above_seconds": 3.0', b'"above_seconds": NaN')),
    fact("a-valid", None, type_="alert.raised.v1"),
    fact("o-metachar-reason", "data.reason: Input should be 'status' or 'silent'", {"data.reason": "silent,x=1"},
         type_="device.offline.v1"),
    fact("r-hostile-text", None, {"data.reason": HOSTILE_TEXT[:256]}, type_="actuation.requested.v1"),
    fact("e-hostile-text", None, {"data.reason": HOSTILE_TEXT, "data.topic": 'devices/a,b=c d"\\/telemetry',
                                  "data.excerpt": HOSTILE_TEXT}, type_="event.rejected.v1"),
    fact("e-reason-huge", "data.reason: String should have at most 1024 characters", {"data.reason": "r" * HUGE},
         type_="event.rejected.v1"),
]
CASES = [pytest.param(row, reader, id=f"{row.name}-{reader}") for row in ROWS for reader in readers(row.topic)]
SETTINGS = load_settings({})
VALID_TELEMETRY = Message("devices/ok-1/telemetry", b'{"seq": 1, "temperature": 20.5}')


def valid_fact(topic: str) -> Message:
    _, type_, _ = topic.split("/")
    return Message(f"events/{type_}/ok-1", json.dumps(fact_document("ok-1", type_)).encode())


def rejections(events: list[Event]) -> list[EventRejectedV1]:
    return [event.data for event in events if isinstance(event.data, EventRejectedV1)]


def test_the_table_names_are_unique_and_readers_match_the_services_subscriptions():
    assert len({row.name for row in ROWS}) == len(ROWS)
    reads = {"ingest": INGEST_SPEC.reads, "sink": SINK_SPEC.reads, "climate": spec_of(build_reactor("climate")).reads}
    reads |= {name: spec_of(build_reactor(name)).reads for name in reactor_names()}
    for row in ROWS:
        assert {name for name, filters in reads.items() if any(matches(f, row.topic) for f in filters)} == set(
            readers(row.topic)), row.name


def build_reactor(name: str):
    return climate.build(SETTINGS, Registry(None)) if name == "climate" else build_installed(name, SETTINGS)


class Lines(list):
    def write(self, lines: list[str]) -> None:
        self.extend(lines)


def service(reader: str, tmp_path) -> tuple[Callable[[Message], Awaitable[list[Event]]], Counter]:
    """One service in memory: a function that sends it a message and returns the facts it publishes
    about it (rejections included), and the service's counts."""
    if reader == "ingest":
        ingest = Ingest()

        async def send(message: Message) -> list[Event]:
            return ingest.facts(message)
        return send, ingest.counts
    if reader == "sink":
        broker, lines = MemoryBroker(), Lines()
        sink = Sink(MemoryTransport(broker, ClientConfig("sink")), lines, SETTINGS.influx, Spool(tmp_path, 1 << 20))

        async def send(message: Message) -> list[Event]:
            before, stored = len(broker.history), len(lines)
            sink._add(Delivery(message))
            await sink.flush(asyncio.Event())
            published = [decode_event(m.payload) for m in broker.history[before:]]
            assert (len(lines) > stored) + len(published) == (0 if message.retain else 1)  # stored or rejected
            return published
        return send, sink.counts
    harness = ReactorHarness(build_reactor(reader), start=utc_now())
    return harness.send_message, harness.runner.counts


@pytest.mark.parametrize("row,reader", CASES)
async def test_each_reader_rejects_once_with_the_reason_or_accepts(row, reader, tmp_path):
    send, _ = service(reader, tmp_path)
    rejected = rejections(await send(Message(row.topic, row.payload)))
    if row.reason is None:
        assert rejected == []
    else:
        [rejection] = rejected
        assert rejection.reason.startswith(row.reason)
        assert rejection.topic == row.topic
    valid = VALID_TELEMETRY if row.topic.startswith("devices/") else valid_fact(row.topic)
    assert rejections(await send(valid)) == []  # and the service goes on


@pytest.mark.parametrize("type_", ["telemetry", "reading.v1", "alert.raised.v1"])
async def test_a_retained_copy_is_ignored_and_counted_by_every_reader(type_, tmp_path):
    if type_ == "telemetry":
        topic, payload = "devices/forged/telemetry", VALID_TELEMETRY.payload
    else:
        topic, payload = f"events/{type_}/forged", json.dumps(fact_document("forged", type_)).encode()
    for reader in readers(topic):
        send, counts = service(reader, tmp_path / reader)
        assert await send(Message(topic, payload, retain=True)) == [], reader
        assert counts["ignored_retained"] == 1, reader
