"""The reactor runtime: consume declared event types, emit declared facts, never stop the stream.

A reactor is a plain object with a `name`, the event types it `consumes` and `emits`,
and `react(event)`, which returns the data of the facts it concludes (optionally with
another subject). The runtime fills in the envelope: id, source, time, sequence,
`correlationid` inherited from the cause and `causationid` naming it.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable
from typing import Protocol

from .errors import InvalidInput
from .manifest import ServiceSpec
from .events import Event, EventData, EventRejectedV1, decode_event, new_event
from .topics import event_filter
from .service import consume, publish_events
from .transport import Delivery, Message, Transport

log = logging.getLogger(__name__)

Emission = EventData | tuple[str, EventData]  # data, or (subject, data)
DEDUPE_WINDOW = 100_000


class Reactor(Protocol):
    name: str
    consumes: tuple[str, ...]
    emits: tuple[str, ...]

    def react(self, event: Event) -> Iterable[Emission]: ...


def spec_of(reactor: Reactor) -> ServiceSpec:
    emits = (*reactor.emits, EventRejectedV1.event_type)
    return ServiceSpec(reactor.name, tuple(event_filter(t) for t in reactor.consumes), reactor.consumes, emits)


class ReactorRunner:
    """Runs one reactor against a transport: decode, dedupe, react, publish, acknowledge."""

    def __init__(self, reactor: Reactor, transport: Transport) -> None:
        self.reactor = reactor
        self.spec = spec_of(reactor)
        self.transport = transport
        self.source = f"reactor/{reactor.name}"
        self.counts: Counter[str] = Counter()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._sequence = 0

    async def run(self, stop: asyncio.Event) -> None:
        await consume(self.transport, stop, self.process)

    def process(self, delivery: Delivery) -> None:
        delivery.ack_when(publish_events(self.transport, self.outcomes(delivery.message)))

    def outcomes(self, message: Message) -> list[Event]:
        """The facts one inbound message leads to: emitted facts, a rejection, or nothing."""
        try:
            event = decode_event(message.payload, topic=message.topic)
        except InvalidInput as exc:
            return [self._rejected(message, exc.message, subject="unknown")]
        if event.type not in self.reactor.consumes:
            return [self._rejected(message, f"{self.reactor.name} does not consume {event.type}", event.subject)]
        if self._is_duplicate(event.id):
            self.counts["duplicates"] += 1
            return []
        self.counts["consumed"] += 1
        try:
            return [self._caused(event, emission) for emission in self.reactor.react(event)]
        except Exception as exc:  # a failing handler must not stop the stream
            log.exception("%s failed on event %s", self.reactor.name, event.id)
            return [self._rejected(message, f"handler raised {type(exc).__name__}: {exc}", event.subject)]

    def _caused(self, cause: Event, emission: Emission) -> Event:
        subject, data = emission if isinstance(emission, tuple) else (cause.subject, emission)
        if data.event_type not in self.reactor.emits:
            raise TypeError(f"{self.reactor.name} emitted {data.event_type}, which it does not declare")
        self.counts[f"emitted:{data.event_type}"] += 1
        return new_event(data, source=self.source, subject=subject, sequence=self._next_sequence(), cause=cause)

    def _rejected(self, message: Message, reason: str, subject: str) -> Event:
        self.counts["rejected"] += 1
        data = EventRejectedV1(
            reason=reason[:1024],
            rejected_by=self.source,
            topic=message.topic[:512],
            excerpt=EventRejectedV1.excerpt_of(message.payload),
        )
        return new_event(data, source=self.source, subject=subject, sequence=self._next_sequence())

    def _is_duplicate(self, event_id: str) -> bool:
        if event_id in self._seen:
            return True
        self._seen[event_id] = None
        if len(self._seen) > DEDUPE_WINDOW:
            self._seen.popitem(last=False)
        return False

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence
