"""The sink service: every event on `events/#` into InfluxDB, in batches, acknowledged once durable.

A batch is flushed when it reaches `batch_size` events or is `flush_interval` old. A
delivery is acknowledged to the broker only once it is durable: written to InfluxDB, or
appended and fsync'ed to the disk spool. When InfluxDB is down, slow or answering 5xx or
429, batches go to the spool, and a replayer writes the spool back in order as soon as
InfluxDB answers again; while the spool holds anything, new batches queue behind it. At
the spool's size limit the sink stops acknowledging, so the broker holds the rest.

Points InfluxDB refuses as malformed (HTTP 400, 413) are isolated by splitting the batch
and become `event.rejected.v1` facts; everything else in the batch is written.

Events of a type the gateway does not know in code are stored when a service announces its
schema on `choreo/schemas/#` and their data satisfies it (gateway/announced.py). The sink keeps
the schemas it has seen in a file next to its spool, since events may still be queued for it
after an announcement is gone.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..announced import AnnouncedSchemas
from ..errors import InvalidInput, StoreError
from ..events import EventRejectedV1, decode_event, utc_now
from ..manifest import ServiceSpec
from ..rejection import UNKNOWN_SUBJECT, Rejections
from ..service import ignored_retained, publish_events
from ..settings import InfluxSettings
from ..topics import EVENTS_FILTER, ID_PATTERN, SCHEMAS_FILTER
from ..transport import Delivery, Message, Transport
from .schema import event_lines
from .spool import Spool, SpoolFull, record_size

log = logging.getLogger(__name__)

SOURCE = "gateway/sink"
MAX_BACKOFF = 30.0
SPLITTABLE_STATUS = {400, 413}
STATUS_EVERY = 10.0
# Nobody waits on the sink within milliseconds (it acknowledges once a batch is written), so while
# a batch is open it lets the next burst gather for this long rather than waking for every message.
LINGER = 0.02
SCHEMAS_PREFIX = SCHEMAS_FILTER.removesuffix("#")
SPEC = ServiceSpec(name="sink", reads=(EVENTS_FILTER, SCHEMAS_FILTER), consumes=("*",),
                   emits=(EventRejectedV1.event_type,))


def schema_memory(spool: Spool) -> Path:
    """Where a sink keeps the announced schemas it has seen: next to its spool."""
    return spool.directory.with_name(f"{spool.directory.name}.schemas.json")


class Writer(Protocol):
    def write(self, lines: list[str]) -> None: ...


@dataclass(slots=True)
class Unit:
    """One event's points on their way to InfluxDB."""

    lines: list[str]
    subject: str
    own_rejection: bool = False  # the sink's own rejection fact: never rejected again (it would loop)
    delivery: Delivery | None = None  # live: acknowledged once durable
    rejection: asyncio.Future[None] | None = None

    def record(self) -> bytes:
        flags = "r" if self.own_rejection else "-"
        return f"{self.subject}\n{flags}\n".encode() + "\n".join(self.lines).encode()

    @classmethod
    def from_record(cls, record: bytes) -> Unit:
        subject, flags, lines = record.decode().split("\n", 2)
        return cls(lines.split("\n"), subject, own_rejection=flags == "r")

    def acknowledge(self) -> None:
        if self.delivery is not None:
            self.delivery.ack_when([self.rejection] if self.rejection else [])


@dataclass
class _Batch:
    units: list[Unit] = field(default_factory=list)
    started: float = 0.0

    def add(self, unit: Unit) -> None:
        if not self.units:
            self.started = time.monotonic()
        self.units.append(unit)


class Sink:
    spec = SPEC

    def __init__(self, transport: Transport, writer: Writer, settings: InfluxSettings, spool: Spool) -> None:
        self.transport = transport
        self.writer = writer
        self.settings = settings
        self.spool = spool
        self.counts: Counter[str] = Counter()
        self._batch = _Batch()
        self._sequence = 0
        self.rejections = Rejections(SOURCE, self.counts, self._next_sequence)
        self._spooled = asyncio.Event()
        self._spool_lock = asyncio.Lock()  # appends and the replay's cursor moves run in threads
        self._last_status = time.monotonic()
        self.lag_seconds: float | None = None  # how long after it was emitted the latest event was received
        self.schemas = AnnouncedSchemas(schema_memory(spool), self.counts)

    async def run(self, stop: asyncio.Event) -> None:
        # Batches are written one after the other, between receives: overlapping them with
        # receiving was measured slower (the writer thread and the event loop share the GIL).
        replayer = asyncio.create_task(self._replay(stop))
        try:
            while not stop.is_set():
                delivery = await self._next_delivery()
                if delivery is not None:
                    self._add(delivery)
                if self._batch_due():
                    await self.flush(stop)
                if replayer.done():
                    replayer.result()  # a replayer that died must not leave a sink that only looks alive
                self._report()
            await self.flush(stop)
        except BaseException:
            replayer.cancel()  # fail loudly: exit, and let the supervisor restart the service
            raise
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await replayer
            log.info("sink: %s", self.status())

    # -- metrics -------------------------------------------------------------------------
    def status(self) -> str:
        c = self.counts
        return (f"received {c['received']}, written {c['written']}, spooled {c['spooled']}, replayed {c['replayed']}, "
                f"retried {c['write_retries']}, rejected {c['rejected']}, ignored retained {c['ignored_retained']}, "
                f"spool full {c['spool_full']}, announced types {len(self.schemas.types())}, "
                f"spool depth {len(self.spool)} events / {self.spool.bytes:,} bytes")

    def _report(self) -> None:
        if time.monotonic() - self._last_status >= STATUS_EVERY:
            self._last_status = time.monotonic()
            log.info("sink: %s", self.status())

    # -- batching ------------------------------------------------------------------------
    async def _next_delivery(self) -> Delivery | None:
        """The next delivery; once the queue is empty with a batch open, after letting a burst gather."""
        delivery = await self.transport.receive(timeout=0)
        if delivery is None and self._batch.units:
            await self.transport.gather(min(LINGER, self._time_to_flush()))
            delivery = await self.transport.receive(timeout=0)
        return delivery or await self.transport.receive(timeout=self._time_to_flush())

    def _time_to_flush(self) -> float:
        if not self._batch.units:
            return 0.5
        return max(0.0, self._batch.started + self.settings.flush_interval - time.monotonic())

    def _batch_due(self) -> bool:
        units = self._batch.units
        return bool(units) and (len(units) >= self.settings.batch_size
                                or time.monotonic() - self._batch.started >= self.settings.flush_interval)

    def _add(self, delivery: Delivery) -> None:
        message = delivery.message
        if message.topic.startswith(SCHEMAS_PREFIX):
            self.counts["announcements"] += 1
            self._announcement(delivery)
            return
        self.counts["received"] += 1
        if ignored_retained(message, self.counts, "sink"):
            delivery.ack()
            return
        try:
            event = decode_event(message.payload, topic=message.topic, now=utc_now(), announced=self.schemas)
            lines = event_lines(event)
        except InvalidInput as exc:
            delivery.ack_when([self._reject(message, exc.message)])
            return
        self.lag_seconds = (utc_now() - (event.emittedtime or event.time)).total_seconds()
        self._batch.add(Unit(lines, event.subject, event.source == SOURCE, delivery))

    def _announcement(self, delivery: Delivery) -> None:
        """A schema announced (or withdrawn) on choreo/schemas/{type}/{service}; a refused one becomes a rejection."""
        message = delivery.message
        try:
            self.schemas.offer(message)
        except InvalidInput as exc:
            service = message.topic.rsplit("/", 1)[-1]
            subject = service if ID_PATTERN.fullmatch(service) else UNKNOWN_SUBJECT
            delivery.ack_when([self._reject(message, exc.message, subject)])
            return
        delivery.ack()

    async def flush(self, stop: asyncio.Event) -> None:
        """Make the current batch durable."""
        units, self._batch = self._batch.units, _Batch()
        await self.make_durable(units, stop)

    async def make_durable(self, units: list[Unit], stop: asyncio.Event) -> None:
        """In InfluxDB if the spool is empty and InfluxDB answers, else in the spool; then acknowledge."""
        if not units:
            return
        if not len(self.spool):
            try:
                await self._store(units)
                self.counts["written"] += len(units)
                for unit in units:
                    unit.acknowledge()
                return
            except StoreError as exc:
                self._refused(exc, len(units))
        await self._spool(units, stop)

    async def _spool(self, units: list[Unit], stop: asyncio.Event) -> None:
        records = [unit.record() for unit in units]
        while True:
            try:
                async with self._spool_lock:
                    await asyncio.to_thread(self.spool.append, records)
            except SpoolFull as exc:
                self.counts["spool_full"] += 1
                log.error("%s: not acknowledging %d events; the broker keeps them", exc.message, len(units))
                if stop.is_set():
                    return
                await asyncio.sleep(1.0)
                continue
            self.counts["spooled"] += len(units)
            for unit in units:
                unit.acknowledge()
            self._spooled.set()
            return

    # -- the spool's replay ----------------------------------------------------------------
    async def _replay(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        units: list[Unit] | None = None
        while True:
            if not len(self.spool):
                if stop.is_set():
                    return
                self._spooled.clear()
                await _either(self._spooled, stop)
                continue
            if stop.is_set():
                return  # what is left replays at the next start
            if units is None:  # the same units are retried until stored, so a rejection is made once
                async with self._spool_lock:
                    records, position = await asyncio.to_thread(self.spool.peek, self.settings.batch_size)
                units = [Unit.from_record(record) for record in records]
            try:
                await self._store(units)
            except StoreError as exc:
                self._refused(exc, len(units))
                delay = exc.retry_after or backoff
                backoff = min(backoff * 2, MAX_BACKOFF)
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
                continue
            backoff = 0.5
            rejections = [unit.rejection for unit in units if unit.rejection]
            if rejections:
                await asyncio.wait(rejections, timeout=10)
            async with self._spool_lock:
                size = sum(record_size(r) for r in records)
                await asyncio.to_thread(self.spool.advance, position, len(records), size)
            self.counts["replayed"] += len(records)
            units = None

    # -- writing ---------------------------------------------------------------------------
    async def _store(self, units: list[Unit]) -> None:
        """Write the units; a refused batch is split until each refused unit stands alone and is rejected.

        Raises StoreError when InfluxDB is unavailable or refuses for a reason no split can fix."""
        units = [unit for unit in units if unit.rejection is None]  # rejected in an earlier attempt
        if not units:
            return
        lines = [line for unit in units for line in unit.lines]
        try:
            await asyncio.to_thread(self.writer.write, lines)
            return
        except StoreError as exc:
            if exc.status not in SPLITTABLE_STATUS:
                raise
            refusal = exc
        if len(units) == 1:
            self._reject_unit(units[0], refusal)
            return
        middle = len(units) // 2
        for half in (units[:middle], units[middle:]):
            await self._store(half)

    def _refused(self, exc: StoreError, count: int) -> None:
        self.counts["write_retries"] += 1
        # Refusals like 401, 403 or 404 need an operator; the events stay safe meanwhile.
        level = logging.WARNING if exc.retryable else logging.ERROR
        log.log(level, "%s; %d events wait (spool: %d)", exc.message, count, len(self.spool))

    def _reject_unit(self, unit: Unit, exc: StoreError) -> None:
        if unit.own_rejection:
            self.counts["unstorable"] += 1
            log.error("InfluxDB refused the sink's own rejection fact about %s: %s", unit.subject, exc.message)
            return
        excerpt = unit.delivery.message if unit.delivery else Message("spool", "\n".join(unit.lines).encode())
        unit.rejection = self._reject(excerpt, exc.message, unit.subject)

    def _reject(self, message: Message, reason: str, subject: str = UNKNOWN_SUBJECT) -> asyncio.Future[None]:
        [published] = publish_events(self.transport, [self.rejections.of(message, reason, subject)])
        return published

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence


async def _either(*events: asyncio.Event) -> None:
    """Wait until any of the events is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
