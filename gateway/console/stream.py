"""The live stream's clients: each gets at most RATE facts a second from a bounded queue of its own.

The MQTT consumer hands every fact to `Clients.offer`, which never waits: a fact a client's filter
takes goes into its queue while it is under its rate and has room, and is skipped and counted
otherwise. A slow reader only fills its own queue, so it never slows the others or the consumer.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from ..events import SOURCE_PATTERN, Event
from ..topics import validate_event_type, validate_id
from .recent import fact_row, place

RATE = 50  # facts a second to one client
QUEUE_LIMIT = 200  # facts waiting for one client
MAX_CLIENTS = 32
FILTERS = ("type", "subject", "site", "room", "source")


@dataclass(frozen=True)
class StreamFilter:
    """Which facts a client wants; an empty or missing parameter takes every value."""

    type: str | None = None
    subject: str | None = None
    site: str | None = None
    room: str | None = None
    source: str | None = None

    @classmethod
    def of(cls, params: Mapping[str, str]) -> StreamFilter:
        """From the query string; InvalidInput names a malformed value."""
        values = {name: params.get(name) or None for name in FILTERS}
        if values["type"] is not None:
            validate_event_type(values["type"])
        for name in ("subject", "site", "room"):
            value = values[name]
            if value is not None:
                validate_id(value, name)
        source = values["source"]
        if source is not None and not (len(source) <= 80 and SOURCE_PATTERN.fullmatch(source)):
            raise InvalidInput(f"invalid source {source[:80]!r}: expected device/ID, reactor/NAME, "
                               "gateway/NAME or service/NAME")
        return cls(**values)

    def takes(self, event: Event, site: str | None, room: str | None) -> bool:
        return ((self.type is None or self.type == event.type)
                and (self.subject is None or self.subject == event.subject)
                and (self.source is None or self.source == event.source)
                and (self.site is None or self.site == site)
                and (self.room is None or self.room == room))


class StreamClient:
    """One open stream: its filter, its bounded queue, and what it skipped."""

    def __init__(self, stream_filter: StreamFilter, rate: int = RATE, queue_limit: int = QUEUE_LIMIT) -> None:
        self.filter = stream_filter
        self.rate = rate
        self.queue: deque[dict[str, Any]] = deque()
        self.queue_limit = queue_limit
        self.skipped = 0  # since the last `skipped` event sent
        self.skipped_total = 0
        self._window_start = 0.0
        self._in_window = 0
        self._ready = asyncio.Event()
        self.closed = False

    def end(self) -> None:
        """Ask the stream to finish (the console is stopping)."""
        self.closed = True
        self._ready.set()

    def admits(self, now: float) -> bool:
        """Whether one more fact fits this second's rate and the queue; counted as skipped if not."""
        if now - self._window_start >= 1.0:
            self._window_start, self._in_window = now, 0
        if self._in_window >= self.rate or len(self.queue) >= self.queue_limit:
            self.skipped += 1
            self.skipped_total += 1
            return False
        self._in_window += 1
        return True

    def put(self, row: dict[str, Any]) -> None:
        self.queue.append(row)
        self._ready.set()

    async def wait(self, timeout: float) -> None:
        """Until a fact is queued or `timeout` seconds pass."""
        if self.queue or self.closed:
            return
        self._ready.clear()
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            pass

    def take(self) -> list[dict[str, Any]]:
        rows = list(self.queue)
        self.queue.clear()
        return rows

    def take_skipped(self) -> int:
        skipped, self.skipped = self.skipped, 0
        return skipped


class Clients:
    """The open streams, and the counts of what they were sent and skipped (closed ones included)."""

    def __init__(self, limit: int = MAX_CLIENTS) -> None:
        self.limit = limit
        self.open: set[StreamClient] = set()
        self._skipped_closed = 0

    def add(self, stream_filter: StreamFilter) -> StreamClient | None:
        """A new client, or None when `limit` are open."""
        if len(self.open) >= self.limit:
            return None
        client = StreamClient(stream_filter)
        self.open.add(client)
        return client

    def end_all(self) -> None:
        for client in list(self.open):
            client.end()

    def close(self, client: StreamClient) -> None:
        if client in self.open:
            self.open.discard(client)
            self._skipped_closed += client.skipped_total

    @property
    def skipped_total(self) -> int:
        return self._skipped_closed + sum(client.skipped_total for client in self.open)

    @property
    def queued(self) -> int:
        return sum(len(client.queue) for client in self.open)

    def offer(self, event: Event, now: float | None = None) -> None:
        """Queue `event` for every client whose filter takes it and who has room; never waits.
        `now`: monotonic seconds."""
        if not self.open:
            return
        now = time.monotonic() if now is None else now
        site, room = place(event)
        row: dict[str, Any] | None = None
        for client in self.open:
            if client.filter.takes(event, site, room) and client.admits(now):
                row = row or fact_row(event)
                client.put(row)


def sse(event: str, data: object) -> str:
    """One server-sent event. The JSON is ASCII on one line, so no line break can end the data early."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
