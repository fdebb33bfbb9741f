"""The sink service: every event on `events/#` into InfluxDB, in batches, acknowledged once stored.

A batch is flushed when it reaches `batch_size` events or is `flush_interval` old.
Deliveries are acknowledged to the broker only after InfluxDB accepted their batch,
so a crash or an outage leaves them with the broker. Points InfluxDB refuses as
malformed (HTTP 400) are isolated by splitting the batch and become
`event.rejected.v1` facts; everything else in the batch is written.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import InvalidInput, StoreError
from ..manifest import ServiceSpec
from ..events import Event, EventRejectedV1, decode_event, new_event
from ..settings import InfluxSettings
from ..topics import EVENTS_FILTER, event_topic
from ..transport import Delivery, Message, Transport
from .schema import event_lines

log = logging.getLogger(__name__)

SOURCE = "gateway/sink"
MAX_BACKOFF = 30.0
SPLITTABLE_STATUS = {400, 413}


class Writer(Protocol):
    def write(self, lines: list[str]) -> None: ...


@dataclass(slots=True)
class _Item:
    delivery: Delivery
    lines: list[str]
    event: Event


@dataclass
class _Batch:
    items: list[_Item] = field(default_factory=list)
    started: float = 0.0

    def add(self, item: _Item) -> None:
        if not self.items:
            self.started = time.monotonic()
        self.items.append(item)


SPEC = ServiceSpec(name="sink", reads=(EVENTS_FILTER,), consumes=("*",), emits=(EventRejectedV1.event_type,))


class Sink:
    spec = SPEC

    def __init__(self, transport: Transport, writer: Writer, settings: InfluxSettings) -> None:
        self.transport = transport
        self.writer = writer
        self.settings = settings
        self.counts: Counter[str] = Counter()
        self._batch = _Batch()
        self._sequence = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delivery = await self.transport.receive(timeout=self._time_to_flush())
            if delivery is not None:
                self._add(delivery)
            if self._batch_due():
                await self.flush(stop)
        await self.flush(stop)

    def _time_to_flush(self) -> float:
        if not self._batch.items:
            return 0.5
        return max(0.0, self._batch.started + self.settings.flush_interval - time.monotonic())

    def _batch_due(self) -> bool:
        items = self._batch.items
        return bool(items) and (
            len(items) >= self.settings.batch_size or time.monotonic() - self._batch.started >= self.settings.flush_interval
        )

    def _add(self, delivery: Delivery) -> None:
        self.counts["received"] += 1
        message = delivery.message
        try:
            event = decode_event(message.payload, topic=message.topic)
            lines = event_lines(event)
        except InvalidInput as exc:
            delivery.ack_when([self._reject(message.topic, message.payload, exc.message)])
            return
        self._batch.add(_Item(delivery, lines, event))

    async def flush(self, stop: asyncio.Event) -> None:
        """Write the batch, retrying while InfluxDB is unavailable; acknowledge what was stored."""
        items, self._batch = self._batch.items, _Batch()
        if not items:
            return
        backoff = 0.5
        for attempt in itertools.count(1):
            try:
                await self._write(items)
                return
            except StoreError as exc:
                self.counts["write_retries"] += 1
                delay = exc.retry_after or backoff
                # Refusals like 401, 403 or 404 need an operator, but the events stay unacknowledged and safe.
                level = logging.WARNING if exc.retryable else logging.ERROR
                log.log(level, "%s; retrying %d events in %.1fs", exc.message, len(items), delay)
                if stop.is_set() and attempt > 3:
                    log.error("stopping with %d events unwritten; the broker will deliver them again", len(items))
                    return
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _write(self, items: list[_Item]) -> None:
        lines = [line for item in items for line in item.lines]
        try:
            await asyncio.to_thread(self.writer.write, lines)
        except StoreError as exc:
            if exc.status not in SPLITTABLE_STATUS:
                raise
            await self._isolate(items, exc)
            return
        self.counts["written"] += len(items)
        for item in items:
            item.delivery.ack()

    async def _isolate(self, items: list[_Item], exc: StoreError) -> None:
        """Split a refused batch until each refused event stands alone, and reject only those."""
        if len(items) == 1:
            item = items[0]
            if item.event.source == SOURCE:  # our own rejection fact: rejecting it again would loop
                self.counts["unstorable"] += 1
                log.error("InfluxDB refused the sink's own rejection fact %s: %s", item.event.id, exc.message)
                item.delivery.ack()
                return
            message = item.delivery.message
            item.delivery.ack_when([self._reject(message.topic, message.payload, exc.message, item.event.subject)])
            return
        middle = len(items) // 2
        for half in (items[:middle], items[middle:]):
            await self._write(half)

    def _reject(self, topic: str, payload: bytes, reason: str, subject: str = "unknown") -> asyncio.Future[None]:
        self.counts["rejected"] += 1
        log.warning("rejected %s: %s", topic[:128], reason)
        self._sequence += 1
        data = EventRejectedV1(reason=reason[:1024], rejected_by=SOURCE, topic=topic[:512],
                               excerpt=EventRejectedV1.excerpt_of(payload))
        event = new_event(data, source=SOURCE, subject=subject, sequence=self._sequence)
        return self.transport.publish(Message(event_topic(event.type, event.subject), event.to_json()))
