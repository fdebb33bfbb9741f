"""A Homie value that comes before its device's $description waits for it, unacknowledged, in order."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.events import EventRejectedV1, ReadingV1, decode_event
from gateway.fleet import Fleet, Registry
from gateway.ingest.service import IngestService
from gateway.transport import ClientConfig, Delivery, MemoryBroker, MemoryTransport, Message
from tests.helpers import async_wait_for

FLEET = Fleet.model_validate({"sites": [{"id": "hq", "rooms": [{"id": "lab", "devices": [
    {"kind": "temperature", "profile": "homie", "native": "super-car"}]}]}]})
DESCRIPTION = json.dumps({"homie": "5.0", "version": 7, "name": "Super car", "nodes": {"engine": {"properties": {
    "temperature": {"datatype": "float", "unit": "°C"}}}}}).encode()
VALUE = "homie/5/super-car/engine/temperature"


@asynccontextmanager
async def ingest_watched() -> AsyncIterator[tuple[IngestService, MemoryTransport]]:
    """Ingest on a memory broker, and a client that sees every fact it publishes."""
    broker = MemoryBroker()
    async with MemoryTransport(broker, ClientConfig("ingest")) as transport, \
            MemoryTransport(broker, ClientConfig("observer")) as observer:
        await observer.subscribe("events/#")
        yield IngestService(transport, Registry(FLEET)), observer


async def published(observer: MemoryTransport) -> list:
    events = []
    while (delivery := await observer.receive(0.01)) is not None:
        events.append(decode_event(delivery.message.payload))
    return events


async def test_values_before_the_description_are_held_unacknowledged_and_then_read_in_order():
    async with ingest_watched() as (service, observer):
        acknowledged: list[bytes] = []

        def deliver(topic: str, payload: bytes) -> None:
            service.process(Delivery(Message(topic, payload, qos=1), ack=lambda: acknowledged.append(payload)))

        deliver(VALUE, b"21.5")
        deliver(VALUE, b"22.5")
        assert acknowledged == [] and await published(observer) == []
        assert service.counts["awaiting_document"] == 2
        deliver("homie/5/super-car/$description", DESCRIPTION)
        readings = await published(observer)
        assert [event.data.measurements[0].value for event in readings] == [21.5, 22.5]
        assert all(isinstance(event.data, ReadingV1) for event in readings)
        assert acknowledged == [DESCRIPTION, b"21.5", b"22.5"]
        deliver(VALUE, b"23.5")  # once the description is known, a value is read at once
        assert acknowledged[-1] == b"23.5"


async def test_values_whose_description_never_comes_are_refused_after_the_patience():
    async with ingest_watched() as (service, observer):
        service.awaiting.patience = 0.1
        acknowledged: list[bytes] = []
        service.process(Delivery(Message(VALUE, b"21.5", qos=1), ack=lambda: acknowledged.append(b"21.5")))
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        await async_wait_for(lambda: acknowledged, 5, "the refusal")
        stop.set()
        await running
        [refusal] = await published(observer)
        assert isinstance(refusal.data, EventRejectedV1)
        assert refusal.data.reason == ("homie: field 'engine/temperature': no $description of super-car seen yet, "
                                       "so no datatype or unit")


async def test_beyond_the_limit_a_value_is_refused_at_once():
    async with ingest_watched() as (service, _):
        service.awaiting.limit = 1
        acknowledged: list[bytes] = []
        for value in (b"21.5", b"22.5"):
            service.process(Delivery(Message(VALUE, value, qos=1), ack=lambda value=value: acknowledged.append(value)))
        assert acknowledged == [b"22.5"] and service.counts["rejected"] == 1
