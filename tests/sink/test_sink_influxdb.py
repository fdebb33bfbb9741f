"""The sink's batching, acknowledgement and error handling against a real InfluxDB 1.x."""
from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from gateway.events import Measurement, ReadingV1, decode_event, new_event
from gateway.settings import load_settings
from gateway.sink.influx_v1 import InfluxV1
from gateway.sink.service import Sink
from gateway.sink.spool import Spool
from gateway.topics import event_topic
from gateway.transport import ClientConfig, Delivery, MemoryBroker, MemoryTransport, Message
from tests.helpers import async_wait_for, influx_query

pytestmark = pytest.mark.integration


def reading_message(subject: str, value: float, sequence: int | None = None) -> tuple[Message, str]:
    event = new_event(ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=value)]),
                      source=f"device/{subject}", subject=subject, sequence=sequence)
    return Message(event_topic(event.type, event.subject), event.to_json()), event.id


def stored(stack, subject: str) -> list[dict]:
    """The stored readings about `subject`: one point each in `readings`."""
    return influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password,
                        f"SELECT * FROM readings WHERE device = '{subject}'")


class Harness:
    def __init__(self, stack, batch_size: int = 100) -> None:
        self.broker = MemoryBroker()
        self.transport = MemoryTransport(self.broker, ClientConfig("sink"))
        settings = load_settings({**stack.env("sink"), "CHOREO_INFLUX_BATCH_SIZE": str(batch_size)}).influx
        self.spool = Spool(Path(tempfile.mkdtemp(prefix="spool-")), 10 << 20)
        self.sink = Sink(self.transport, InfluxV1(settings), settings, self.spool)
        self.acks: list[asyncio.Future] = []

    def deliver(self, message: Message) -> asyncio.Future:
        ack = asyncio.get_running_loop().create_future()
        self.sink._add(Delivery(message, lambda: ack.set_result(None)))
        self.acks.append(ack)
        return ack

    def deliver_readings(self, subject: str, count: int) -> list[str]:
        """Deliver `count` readings about `subject`; returns their event ids."""
        ids = []
        for n in range(count):
            message, event_id = reading_message(subject, n)
            self.deliver(message)
            ids.append(event_id)
        return ids

    def published(self, event_type: str) -> list:
        return [decode_event(m.payload) for m in self.broker.history if m.topic.startswith(f"events/{event_type}/")]


async def test_batch_is_stored_then_acknowledged(stack):
    subject = f"s-{uuid.uuid4().hex[:8]}"
    harness = Harness(stack)
    ids = harness.deliver_readings(subject, 10)
    assert not any(ack.done() for ack in harness.acks)
    await harness.sink.flush(asyncio.Event())
    assert all(ack.done() for ack in harness.acks)
    assert sorted(row["id"] for row in stored(stack, subject)) == sorted(ids)


async def test_the_same_event_stored_twice_is_one_point(stack):
    subject = f"s-{uuid.uuid4().hex[:8]}"
    harness = Harness(stack)
    message, event_id = reading_message(subject, 1)
    for _ in range(2):
        harness.deliver(message)
        await harness.sink.flush(asyncio.Event())
    harness.deliver(message)
    harness.deliver(message)
    await harness.sink.flush(asyncio.Event())
    assert [row["id"] for row in stored(stack, subject)] == [event_id]
    events = influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password,
                          f"SELECT * FROM events WHERE subject = '{subject}'")
    assert events == []  # a reading is one point, in `readings` only


async def test_a_point_influxdb_refuses_is_isolated_and_the_rest_is_stored(fresh_stack):
    subject = f"s-{uuid.uuid4().hex[:8]}"
    # A string `sequence` stored first in a fresh database makes an integer `sequence` a type conflict
    # (HTTP 400); the other events carry no sequence and are valid.
    conflicting = "conflict-" + uuid.uuid4().hex[:6]
    writer = InfluxV1(load_settings(fresh_stack.env("sink")).influx)
    writer.write([f'readings,device={conflicting},type=reading.v1 sequence="text" {time.time_ns()}'])
    harness = Harness(fresh_stack)
    good_ids = harness.deliver_readings(subject, 7)
    bad_message, bad_id = reading_message(conflicting, 99, sequence=5)
    harness.deliver(bad_message)
    await harness.sink.flush(asyncio.Event())
    assert all(ack.done() for ack in harness.acks)
    assert sorted(row["id"] for row in stored(fresh_stack, subject)) == sorted(good_ids)
    [rejection] = harness.published("event.rejected.v1")
    assert rejection.subject == conflicting and rejection.data.rejected_by == "gateway/sink"
    assert "field type conflict" in rejection.data.reason
    assert harness.sink.counts["rejected"] == 1


async def test_while_influxdb_is_down_batches_are_spooled_then_replayed_in_order(fresh_stack):
    subject = f"s-{uuid.uuid4().hex[:8]}"
    harness = Harness(fresh_stack)
    fresh_stack.influxdb.stop()
    first = harness.deliver_readings(subject, 5)
    await harness.sink.flush(asyncio.Event())
    assert all(ack.done() for ack in harness.acks)  # durable in the spool, so acknowledged
    assert len(harness.spool) == 5 and harness.sink.counts["spooled"] == 5
    later = harness.deliver_readings(subject, 3)
    await asyncio.to_thread(fresh_stack.influxdb.start)
    await harness.sink.flush(asyncio.Event())  # queues behind the spool, to keep the order
    assert len(harness.spool) == 8
    stop = asyncio.Event()
    replaying = asyncio.create_task(harness.sink._replay(stop))
    await async_wait_for(lambda: len(harness.spool) == 0, 30, "the spool to drain")
    stop.set()
    await asyncio.wait_for(replaying, 10)
    assert sorted(row["id"] for row in stored(fresh_stack, subject)) == sorted(first + later)
    assert harness.sink.counts["replayed"] == 8


async def test_a_full_spool_stops_acknowledging_until_it_drains(fresh_stack, tmp_path):
    harness = Harness(fresh_stack)
    harness.sink.spool = Spool(tmp_path / "tiny", max_bytes=1 << 20)
    harness.sink.spool.max_bytes = 600  # room for about one event
    fresh_stack.influxdb.stop()
    harness.deliver_readings("s-full", 1)
    await harness.sink.flush(asyncio.Event())  # an empty spool takes the batch
    assert harness.acks[0].done()
    harness.deliver_readings("s-full", 5)
    stop = asyncio.Event()
    flushing = asyncio.create_task(harness.sink.flush(stop))
    await async_wait_for(lambda: harness.sink.counts["spool_full"] >= 1, 10, "the spool to refuse")
    assert not any(ack.done() for ack in harness.acks[1:])  # the broker keeps them
    await asyncio.to_thread(fresh_stack.influxdb.start)
    replaying = asyncio.create_task(harness.sink._replay(stop))
    await async_wait_for(lambda: all(ack.done() for ack in harness.acks), 30, "acknowledgements to resume")
    stop.set()
    await asyncio.wait_for(asyncio.gather(flushing, replaying), 30)
    assert sorted(row["id"] for row in stored(fresh_stack, "s-full")) != []


async def test_malformed_events_are_rejected_not_stored(stack):
    harness = Harness(stack)
    ack = harness.deliver(Message("events/reading.v1/x", b'{"type": "reading.v1"}'))
    assert ack.done()
    [rejection] = harness.published("event.rejected.v1")
    assert rejection.data.topic == "events/reading.v1/x"
