"""Fact types from outside the gateway: registered by a plugin's model, or known from an announced schema."""
from __future__ import annotations

import asyncio
import json
from typing import ClassVar

import pytest
from pydantic import Field

from gateway.announced import AnnouncedSchemas
from gateway.errors import InvalidInput
from gateway.events import (
    BUILT_IN_TYPES,
    ENVELOPES,
    EVENT_TYPES,
    AnnouncedData,
    EventData,
    ReadingV1,
    decode_event,
    new_event,
    new_event_id,
    register_event_type,
    utc_now,
)
from gateway.reactor import Reactor, spec_of
from gateway.settings import load_settings
from gateway.sink.service import Sink, schema_memory
from gateway.sink.spool import Spool
from gateway.transport import ClientConfig, Delivery, MemoryBroker, MemoryTransport, Message


class ParcelDeliveredV1(EventData):  # a plugin's new fact; its name is used by no other test
    event_type: ClassVar[str] = "parcel.delivered.v1"
    locker: str = Field(max_length=16)
    weight_g: float = Field(ge=0)


class ParcelReturnedV1(EventData):
    event_type: ClassVar[str] = "parcel.returned.v1"
    reason: str


SCHEMA = {"type": "object", "properties": {"count": {"type": "integer"}, "site": {"type": ["string", "integer"]},
                                          "room": {"type": "string"}},
          "required": ["count"]}


def document(event_type: str, data: object, source: str = "service/somesvc", subject: str = "d-1") -> dict:
    return {"specversion": "1.0", "id": new_event_id(), "source": source, "type": event_type, "subject": subject,
            "time": utc_now().isoformat(), "correlationid": new_event_id(), "data": data}


def payload(event_type: str, data: object, **envelope: object) -> bytes:
    return json.dumps({**document(event_type, data), **envelope}).encode()


def announced(schema: dict = SCHEMA, event_type: str = "x.happened.v1", service: str = "somesvc") -> AnnouncedSchemas:
    schemas = AnnouncedSchemas()
    schemas.offer(Message(f"choreo/schemas/{event_type}/{service}", json.dumps(schema).encode(), retain=True))
    return schemas


# -- registration ---------------------------------------------------------------------------
def test_a_reactor_declaring_a_new_model_registers_its_type_and_keeps_its_model():
    reactor = Reactor("lockers")

    @reactor.on(ReadingV1, emits=[ParcelDeliveredV1])
    def react(event, ctx):
        return []

    assert EVENT_TYPES["parcel.delivered.v1"] is ParcelDeliveredV1 and "parcel.delivered.v1" not in BUILT_IN_TYPES
    assert reactor.emitted_models == {"parcel.delivered.v1": ParcelDeliveredV1}
    assert spec_of(reactor).emits == ("event.rejected.v1", "parcel.delivered.v1")
    assert register_event_type(ParcelDeliveredV1) == "parcel.delivered.v1"  # again: the same model, no error


def test_a_registered_type_is_built_and_decoded_like_a_built_in():
    register_event_type(ParcelReturnedV1)
    event = new_event(ParcelReturnedV1(reason="nobody home"), source="reactor/lockers", subject="locker-7")
    decoded = decode_event(event.to_json(), topic="events/parcel.returned.v1/locker-7")
    assert isinstance(decoded.data, ParcelReturnedV1) and decoded == event
    with pytest.raises(InvalidInput, match=r"^data.reason: Field required$"):
        decode_event(payload("parcel.returned.v1", {}))
    with pytest.raises(InvalidInput, match=r"^data.extra: Extra inputs are not permitted$"):
        decode_event(payload("parcel.returned.v1", {"reason": "x", "extra": 1}))


def test_a_second_model_for_a_known_name_is_refused():
    class AnotherReading(EventData):
        event_type: ClassVar[str] = "reading.v1"

    class InheritedName(ReadingV1):  # a subclass without a name of its own
        pass

    for model in (AnotherReading, InheritedName):
        with pytest.raises(ValueError, match=r"event type 'reading.v1' already has the data model "
                                             r"gateway.events.ReadingV1; .* needs a name of its own"):
            register_event_type(model)
    assert EVENT_TYPES["reading.v1"] is ReadingV1


@pytest.mark.parametrize("name", ["Door.opened.v1", "door.opened", "door.opened.v0", "door/opened.v1",
                                  "a" * 126 + ".v1"])  # 129 characters: one too many
def test_a_model_with_a_malformed_name_is_refused(name):
    model = type("Bad", (EventData,), {"__annotations__": {"event_type": ClassVar[str]}, "event_type": name})
    with pytest.raises(ValueError, match=r"\.event_type .*: expected a dotted lower-case name with a major version"):
        Reactor("bad").on(model)(lambda event, ctx: [])
    assert name not in EVENT_TYPES


def test_what_is_not_an_event_data_model_is_refused():
    with pytest.raises(ValueError, match="is not a subclass of gateway.events.EventData"):
        register_event_type(dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not a subclass of gateway.events.EventData"):
        register_event_type(AnnouncedData)
    with pytest.raises(ValueError, match=r"EventData.event_type None"):
        register_event_type(EventData)


# -- announced types -----------------------------------------------------------------------
def test_an_event_of_an_announced_type_decodes_with_every_field_kept():
    sent = document("x.happened.v1", {"count": 3, "note": {"nested": [1, "two"]}, "site": "hq"})
    event = decode_event(json.dumps(sent).encode(), topic="events/x.happened.v1/d-1", now=utc_now(),
                         announced=announced())
    assert isinstance(event.data, AnnouncedData) and event.type == "x.happened.v1"
    assert event.data.model_dump() == sent["data"]
    assert json.loads(event.to_json())["data"] == sent["data"]


@pytest.mark.parametrize("data, reason", [
    ({"count": "3"}, "data.count: '3' is not of type 'integer'"),
    ({}, "data: 'count' is a required property"),
    ({"count": 1, "room": ["lab"]}, "data.room: ['lab'] is not of type 'string'"),
    ([1], "data: Input should be an object"),
])
def test_invalid_data_of_an_announced_type_is_rejected_naming_the_path(data, reason):
    with pytest.raises(InvalidInput) as raised:
        decode_event(payload("x.happened.v1", data), topic="events/x.happened.v1/d-1", announced=announced())
    assert raised.value.message == reason and raised.value.topic == "events/x.happened.v1/d-1"


@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"NaN", b"Infinity"])
def test_no_number_of_an_announced_type_may_be_infinite(number):
    raw = payload("x.happened.v1", {"count": 1, "deep": [{"value": 12345}]}).replace(b"12345", number)
    with pytest.raises(InvalidInput, match=r"^data.deep.0.value: Input should be a finite number$"):
        decode_event(raw, announced=announced())


@pytest.mark.parametrize("change, reason", [
    ({"subject": "a/b"}, "subject: String should match pattern"),
    ({"extra": 1}, "extra: Extra inputs are not permitted"),
    ({"time": "2026-01-01T00:00:00"}, "time: time must carry a UTC offset"),
    ({"source": "somesvc"}, "source: String should match pattern"),
])
def test_the_envelope_of_an_announced_type_is_as_strict_as_any(change, reason):
    with pytest.raises(InvalidInput, match=reason):
        decode_event(payload("x.happened.v1", {"count": 1}, **change), announced=announced())


def test_an_announced_type_on_another_types_topic_is_rejected():
    with pytest.raises(InvalidInput, match="does not belong on topic 'events/reading.v1/d-1'"):
        decode_event(payload("x.happened.v1", {"count": 1}), topic="events/reading.v1/d-1", announced=announced())


def test_an_unannounced_type_is_rejected_naming_the_reason():
    for schemas in (None, announced()):
        with pytest.raises(InvalidInput, match=r"^unknown event type 'door.opened.v1': no service announces it$"):
            decode_event(payload("door.opened.v1", {"count": 1}), announced=schemas)
    with pytest.raises(InvalidInput, match=r"^unknown event type 'Door Opened': not a dotted lower-case name"):
        decode_event(payload("Door Opened", {"count": 1}), announced=announced())


def test_a_built_in_type_is_decoded_by_its_model_whatever_is_announced():
    schemas = announced({"type": "object", "required": ["nothing-a-reading-has"]}, event_type="reading.v1")
    reading = new_event(ReadingV1.model_validate({"measurements": [{"name": "t", "unit": "Cel", "value": 1}]}),
                        source="gateway/ingest", subject="d-1")
    assert isinstance(decode_event(reading.to_json(), announced=schemas).data, ReadingV1)
    assert "x.happened.v1" not in ENVELOPES


# -- the sink ------------------------------------------------------------------------------
class Lines(list):
    def write(self, lines: list[str]) -> None:
        self.extend(lines)


class SinkInMemory:
    def __init__(self, spool_dir) -> None:
        self.broker, self.lines = MemoryBroker(), Lines()
        self.spool = Spool(spool_dir, 1 << 20)
        self.sink = Sink(MemoryTransport(self.broker, ClientConfig("sink")), self.lines,
                         load_settings({}).influx, self.spool)

    async def send(self, message: Message) -> list[dict]:
        """What the sink published about `message` (its rejections); the lines it stored are in self.lines."""
        before = len(self.broker.history)
        self.sink._add(Delivery(message))
        await self.sink.flush(asyncio.Event())
        return [json.loads(m.payload) for m in self.broker.history[before:]]


def event_message(event_type: str, data: object, source: str = "service/somesvc") -> Message:
    return Message(f"events/{event_type}/d-1", json.dumps(document(event_type, data, source)).encode())


def schema_message(schema: object, event_type: str = "x.happened.v1", service: str = "somesvc") -> Message:
    raw = schema if isinstance(schema, bytes) else json.dumps(schema).encode()
    return Message(f"choreo/schemas/{event_type}/{service}", raw, retain=True)


async def test_the_sink_stores_an_announced_type_with_valid_ids_only_as_tags(tmp_path):
    sink = SinkInMemory(tmp_path / "sink")
    assert await sink.send(schema_message(SCHEMA)) == []
    assert await sink.send(event_message("x.happened.v1", {"count": 2, "site": "hq", "room": "lab 1"})) == []
    [line] = sink.lines
    assert line.startswith("events,site=hq,source=service/somesvc,subject=d-1,type=x.happened.v1 ")
    assert 'data="{\\"count\\":2,\\"site\\":\\"hq\\",\\"room\\":\\"lab 1\\"}"' in line
    assert await sink.send(event_message("x.happened.v1", {"count": 2, "site": 7})) == []
    assert sink.lines[1].startswith("events,source=service/somesvc,subject=d-1,type=x.happened.v1 ")


async def test_the_sink_rejects_an_unannounced_type_and_invalid_data_with_the_reason(tmp_path):
    sink = SinkInMemory(tmp_path / "sink")
    [rejection] = await sink.send(event_message("door.opened.v1", {"count": 1}))
    assert rejection["data"]["reason"] == "unknown event type 'door.opened.v1': no service announces it"
    await sink.send(schema_message(SCHEMA))
    [rejection] = await sink.send(event_message("x.happened.v1", {"count": "two"}))
    assert rejection["data"]["reason"] == "data.count: 'two' is not of type 'integer'"
    assert sink.lines == [] and sink.sink.counts["rejected"] == 2


async def test_the_sink_rejects_a_refused_announcement_and_goes_on(tmp_path):
    sink = SinkInMemory(tmp_path / "sink")
    [rejection] = await sink.send(schema_message({"$ref": "https://example.com/s.json"}))
    assert rejection["type"] == "event.rejected.v1" and rejection["subject"] == "somesvc"
    assert rejection["data"]["reason"].startswith("schema announcement refused: $ref 'https://example.com/s.json'")
    assert rejection["data"]["topic"] == "choreo/schemas/x.happened.v1/somesvc"
    assert sink.sink.counts["schemas_refused"] == 1
    assert await sink.send(schema_message(SCHEMA)) == []
    assert await sink.send(event_message("x.happened.v1", {"count": 1})) == []


async def test_the_sink_remembers_announced_schemas_across_its_restarts(tmp_path):
    first = SinkInMemory(tmp_path / "sink")
    await first.send(schema_message(SCHEMA))
    assert schema_memory(first.spool) == tmp_path / "sink.schemas.json" and schema_memory(first.spool).exists()
    first.spool.close()
    again = SinkInMemory(tmp_path / "sink")  # no announcement comes again: the broker's session had it
    assert await again.send(event_message("x.happened.v1", {"count": 1})) == []
    assert len(again.lines) == 1
