"""Each service's counters, published retained on `choreo/services/{name}[/{partition}]/counters`.

Every 5 s, and once at a clean stop, a service says what it has counted: its own counts (received,
emitted:TYPE, rejected, spooled, ...) and its transport's (received, dropped, published, refused,
reconnects, held_back, ...), with `lag_seconds` when it knows how far behind it runs. The console
shows them and exposes them on `/metrics`; they are QoS 0, since the next report replaces a lost one.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime

from .manifest import ServiceSpec, this_instance
from .topics import counters_topic
from .transport import Message, Transport

REPORT_EVERY = 5.0


def counters_message(spec: ServiceSpec, counts: Mapping[str, int], transport: Mapping[str, int],
                     lag_seconds: float | None = None, now: datetime | None = None) -> Message:
    """The retained report of one service instance. In `counters` a service's own count wins over the
    transport's of the same name (both say `received`); `transport` keeps the transport's as they are."""
    counters: dict[str, float] = {**transport, **counts}
    if lag_seconds is not None:
        counters["lag_seconds"] = round(lag_seconds, 3)
    document = {
        "name": spec.name,
        "partition": spec.partition,
        "instance": this_instance(),
        "time": (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "counters": counters,
        "transport": dict(transport),
    }
    return Message(counters_topic(spec.name, spec.partition), json.dumps(document).encode(), qos=0, retain=True)


class CounterReports:
    """Publishes one service's counters every `every` seconds while running, and once when it stops."""

    def __init__(self, transport: Transport, spec: ServiceSpec, counts: Counter[str],
                 lag_seconds: Callable[[], float | None] = lambda: None, every: float = REPORT_EVERY) -> None:
        self.transport = transport
        self.spec = spec
        self.counts = counts
        self.lag_seconds = lag_seconds
        self.every = every

    def publish(self) -> None:
        if not self.transport.is_connected:
            return  # a QoS 0 report is not kept while offline; the next one follows within `every`
        message = counters_message(self.spec, self.counts, self.transport.stats.as_dict(), self.lag_seconds())
        self.transport.publish(message)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Report at once and then periodically inside the block; report once more on leaving it."""
        task = asyncio.create_task(self._periodically())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.publish()

    async def _periodically(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(self.every)
