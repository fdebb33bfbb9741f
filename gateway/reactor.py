"""The reactor runtime: declare what a reactor consumes and emits, and let the runtime do the rest.

    reactor = Reactor("door", state=DoorState, settings=DoorSettings())

    @reactor.on("reading.v1", emits=["alert.raised.v1"])
    def opened(event, ctx):
        ...
        ctx.start_timer("open-too-long", seconds=ctx.settings.limit)

    @reactor.timer("open-too-long", emits=["alert.raised.v1"])
    def too_long(ctx):
        return [AlertRaisedV1(...)]

Handlers return the data of the facts they conclude, optionally as (subject, data);
the runtime fills in the envelope (id, source, time, sequence, correlationid inherited
from the cause, causationid naming it) and refuses types the reactor did not declare.

Safety under redelivery and restarts:
- the same event id is handled once (a window of recent ids, kept with the state);
- per-subject state, timers, the window and the sequence counter are checkpointed to
  disk, and a delivery is acknowledged only after the checkpoint that includes its
  effect, so a crash replays exactly the unacknowledged events from the last state;
- a fact's id is derived from its cause and its time is its cause's time, so a replay
  rebuilds the very same facts, which consumers then drop as duplicates.
"""
from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from .errors import InvalidInput
from .events import (
    EVENT_TYPES,
    Event,
    EventData,
    EventRejectedV1,
    decode_event,
    derived_event_id,
    new_event,
    utc_now,
)
from .manifest import ServiceSpec
from .service import publish_events
from .state import StateStore
from .topics import event_filter, validate_id
from .transport import Delivery, Message, Transport

log = logging.getLogger(__name__)

Emission = EventData | tuple[str, EventData]  # data about the key's subject, or (subject, data)
Handler = Callable[[Event, "Context"], Iterable[Emission] | None]
TimerHandler = Callable[["Context"], Iterable[Emission] | None]
DEDUPE_WINDOW = 20_000
CHECKPOINT_EVENTS = 500
CHECKPOINT_SECONDS = 0.1


class NoState(BaseModel):
    pass


class Reactor:
    """A plain registry of handlers: what a reactor consumes, emits and does."""

    def __init__(self, name: str, *, description: str = "", version: str = "1", state: type[BaseModel] = NoState,
                 settings: Any = None, drop_stale: bool = False, shared: bool = False) -> None:
        self.name = validate_id(name, "reactor name")
        self.description = description
        self.version = version
        self.state_model = state
        self.settings = settings  # replaced on SIGHUP; handlers read it through ctx.settings
        self.drop_stale = drop_stale  # drop events older (by their source's sequence) than one already seen
        self.shared = shared  # stateless: replicas may split the stream through a shared subscription
        self.handlers: dict[str, Handler] = {}
        self.timer_handlers: dict[str, TimerHandler] = {}
        self.emits: set[str] = set()

    @property
    def consumes(self) -> tuple[str, ...]:
        return tuple(self.handlers)

    def on(self, *event_types: str, emits: Iterable[str] = ()) -> Callable[[Handler], Handler]:
        """Register a handler for events of these types."""
        def register(handler: Handler) -> Handler:
            for event_type in event_types:
                _known(event_type)
                if event_type in self.handlers:
                    raise ValueError(f"{self.name} already handles {event_type}")
                self.handlers[event_type] = handler
            self._declare(emits)
            return handler
        return register

    def timer(self, name: str, *, emits: Iterable[str] = ()) -> Callable[[TimerHandler], TimerHandler]:
        """Register what happens when a timer started with ctx.start_timer(name, ...) runs out."""
        def register(handler: TimerHandler) -> TimerHandler:
            self.timer_handlers[name] = handler
            self._declare(emits)
            return handler
        return register

    def _declare(self, emits: Iterable[str]) -> None:
        for event_type in emits:
            _known(event_type)
            self.emits.add(event_type)


def _known(event_type: str) -> None:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(sorted(EVENT_TYPES))}")


@dataclass
class Timer:
    deadline: datetime
    cause: tuple[str, str]  # (causation id, correlation id) of the event that started it


class Context:
    """What a handler may use: settings, the state of its key, timers, and the current time."""

    def __init__(self, runner: "ReactorRunner", key: str, now: datetime, cause: tuple[str, str]) -> None:
        self._runner = runner
        self.key = key
        self.now = now
        self._cause = cause

    @property
    def settings(self) -> Any:
        return self._runner.reactor.settings

    @property
    def state(self) -> Any:
        """The mutable state of this key (by default the event's subject)."""
        return self._runner.state_of(self.key)

    def state_of(self, key: str) -> Any:
        return self._runner.state_of(key)

    def start_timer(self, name: str, seconds: float, key: str | None = None) -> None:
        """(Re)start a timer that calls the reactor's timer handler `name` after `seconds`."""
        if name not in self._runner.reactor.timer_handlers:
            raise ValueError(f"{self._runner.reactor.name} has no timer handler {name!r}")
        self._runner.timers[(key or self.key, name)] = Timer(self.now + timedelta(seconds=seconds), self._cause)

    def cancel_timer(self, name: str, key: str | None = None) -> None:
        self._runner.timers.pop((key or self.key, name), None)

    def timer_running(self, name: str, key: str | None = None) -> bool:
        return (key or self.key, name) in self._runner.timers


def spec_of(reactor: Reactor) -> ServiceSpec:
    reads = tuple(event_filter(t) for t in reactor.consumes)
    if reactor.shared:
        reads = tuple(f"$share/{reactor.name}/{topic_filter}" for topic_filter in reads)
    emits = tuple(sorted({*reactor.emits, EventRejectedV1.event_type}))
    return ServiceSpec(reactor.name, reads, reactor.consumes, emits, reactor.version)


class ReactorRunner:
    """Runs one reactor against a transport: decode, dedupe, order, react, time, checkpoint, acknowledge."""

    def __init__(self, reactor: Reactor, transport: Transport, store: StateStore | None = None,
                 clock: Callable[[], datetime] = utc_now, partition: tuple[int, int] | None = None) -> None:
        self.reactor = reactor
        self.partition = partition  # (index, count): handle only the subjects that hash to index
        self.transport = transport
        self.store = store or StateStore(None)
        self.clock = clock
        self.spec = spec_of(reactor)
        self.source = f"reactor/{reactor.name}"
        self.counts: Counter[str] = Counter()
        self._pending: list[tuple[Delivery, list[asyncio.Future[None]]]] = []
        self._pending_since = 0.0
        self._restore(self.store.load())

    # -- state ---------------------------------------------------------------------------
    def _restore(self, snapshot: dict[str, Any]) -> None:
        model = self.reactor.state_model
        self.states: dict[str, BaseModel] = {k: model.model_validate(v) for k, v in snapshot.get("states", {}).items()}
        self.seen: OrderedDict[str, None] = OrderedDict.fromkeys(snapshot.get("seen", []))
        self.last_sequence: dict[str, int] = snapshot.get("sources", {})
        self.sequence: int = snapshot.get("sequence", 0)
        self.timers: dict[tuple[str, str], Timer] = {
            (t["key"], t["name"]): Timer(datetime.fromisoformat(t["deadline"]), tuple(t["cause"]))
            for t in snapshot.get("timers", [])
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "states": {key: state.model_dump(mode="json") for key, state in self.states.items()},
            "seen": list(self.seen),
            "sources": self.last_sequence,
            "sequence": self.sequence,
            "timers": [{"key": k, "name": n, "deadline": t.deadline.isoformat(), "cause": list(t.cause)}
                       for (k, n), t in self.timers.items()],
        }

    def state_of(self, key: str) -> Any:
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = self.reactor.state_model()
        return state

    # -- the loop ----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                delivery = await self.transport.receive(timeout=self._wait())
                if delivery is not None:
                    self.process(delivery)
                publish_events(self.transport, self.fire_due_timers())
                if self._checkpoint_due():
                    self.checkpoint()
        finally:
            self.checkpoint()

    def _wait(self) -> float:
        waits = [0.5]
        if self._pending:
            waits.append(max(0.0, self._pending_since + CHECKPOINT_SECONDS - time.monotonic()))
        if self.timers:
            soonest = min(timer.deadline for timer in self.timers.values())
            waits.append(max(0.0, (soonest - self.clock()).total_seconds()))
        return min(waits)

    def _checkpoint_due(self) -> bool:
        return bool(self._pending) and (len(self._pending) >= CHECKPOINT_EVENTS
                                        or time.monotonic() - self._pending_since >= CHECKPOINT_SECONDS)

    def process(self, delivery: Delivery) -> None:
        """Handle one delivery now; it is acknowledged after the next checkpoint and its facts' confirmations."""
        futures = publish_events(self.transport, self.outcomes(delivery.message))
        if self.store.path is None:
            delivery.ack_when(futures)
            return
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append((delivery, futures))

    def checkpoint(self) -> None:
        """Make the state durable, then let the deliveries it includes be acknowledged."""
        self.store.save(self.snapshot())
        pending, self._pending = self._pending, []
        for delivery, futures in pending:
            delivery.ack_when(futures)

    # -- one event ---------------------------------------------------------------------
    def outcomes(self, message: Message) -> list[Event]:
        """The facts one inbound message leads to: emitted facts, a rejection, or nothing."""
        try:
            event = decode_event(message.payload, topic=message.topic)
        except InvalidInput as exc:
            return [self._rejected(message, exc.message, subject="unknown")]
        handler = self.reactor.handlers.get(event.type)
        if handler is None:
            return [self._rejected(message, f"{self.reactor.name} does not consume {event.type}", event.subject)]
        if self.partition and zlib.crc32(event.subject.encode()) % self.partition[1] != self.partition[0]:
            self.counts["other_partition"] += 1
            return []
        if self._is_duplicate(event.id):
            self.counts["duplicates"] += 1
            return []
        if self._is_stale(event) and self.reactor.drop_stale:
            self.counts["dropped_stale"] += 1
            return []
        self.counts["consumed"] += 1
        context = Context(self, event.subject, event.time, (event.id, event.correlationid))
        try:
            emissions = list(handler(event, context) or ())
            return self._facts(emissions, event.subject, event.time, (event.id, event.correlationid), event.id)
        except Exception as exc:  # a failing handler must not stop the stream
            log.exception("%s failed on event %s", self.reactor.name, event.id)
            return [self._rejected(message, f"handler raised {type(exc).__name__}: {exc}", event.subject)]

    def fire_due_timers(self) -> list[Event]:
        """Run the handlers of every timer whose deadline has passed; returns their facts."""
        now = self.clock()
        due = sorted((timer.deadline, key, name) for (key, name), timer in self.timers.items() if timer.deadline <= now)
        facts: list[Event] = []
        for deadline, key, name in due:
            timer = self.timers.pop((key, name))
            context = Context(self, key, deadline, timer.cause)
            try:
                emissions = list(self.reactor.timer_handlers[name](context) or ())
                facts += self._facts(emissions, key, deadline, timer.cause, f"{name}|{key}|{deadline.isoformat()}")
            except Exception:
                log.exception("%s timer %s for %s failed", self.reactor.name, name, key)
                self.counts["timer_failures"] += 1
        self.counts["timers_fired"] += len(due)
        return facts

    def _facts(self, emissions: list[Emission], subject: str, at: datetime, cause: tuple[str, str], seed: str) -> list[Event]:
        facts = []
        for index, emission in enumerate(emissions):
            about, data = emission if isinstance(emission, tuple) else (subject, emission)
            if data.event_type not in self.reactor.emits:
                raise TypeError(f"{self.reactor.name} emitted {data.event_type}, which it does not declare")
            event_id = derived_event_id(at, f"{self.reactor.name}|{seed}|{index}".encode())
            facts.append(new_event(data, source=self.source, subject=about, time=at, sequence=self._next_sequence(),
                                   caused_by=cause, event_id=event_id))
            self.counts[f"emitted:{data.event_type}"] += 1
        return facts

    def _rejected(self, message: Message, reason: str, subject: str) -> Event:
        self.counts["rejected"] += 1
        data = EventRejectedV1(reason=reason[:1024], rejected_by=self.source, topic=message.topic[:512],
                               excerpt=EventRejectedV1.excerpt_of(message.payload))
        return new_event(data, source=self.source, subject=subject, sequence=self._next_sequence())

    def _is_duplicate(self, event_id: str) -> bool:
        if event_id in self.seen:
            return True
        self.seen[event_id] = None
        if len(self.seen) > DEDUPE_WINDOW:
            self.seen.popitem(last=False)
        return False

    def _is_stale(self, event: Event) -> bool:
        """Track each source's `sequence`: count gaps and late events; True for a late one."""
        if event.sequence is None:
            return False
        last = self.last_sequence.get(event.source)
        if last is None or event.sequence > last or event.sequence == 1:  # new, next, or the source restarted
            if last is not None and event.sequence > last + 1:
                self.counts["sequence_gaps"] += 1
            self.last_sequence[event.source] = event.sequence
            return False
        self.counts["late"] += 1
        return True

    def _next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence
