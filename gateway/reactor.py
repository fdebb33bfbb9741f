"""The reactor runtime: declare what a reactor consumes and emits, and let the runtime do the rest.

    reactor = Reactor("door", state=DoorState, settings=DoorSettings())

    @reactor.on("reading.v1", emits=["alert.cleared.v1"])
    def contact(event, ctx):
        ...
        ctx.start_timer("open-too-long", seconds=ctx.settings.limit_seconds)

    @reactor.timer("open-too-long", emits=["alert.raised.v1"])
    def too_long(ctx):
        return [AlertRaisedV1(...)]

Handlers return the data of the facts they conclude, optionally as (subject, data);
the runtime fills in the envelope (id, source, time, sequence, correlationid inherited
from the cause, causationid naming it) and refuses types the reactor did not declare.

Safety under redelivery and restarts (a transactional outbox):
- a handler's effects (state, timers, the facts it emits) are committed together in a
  checkpoint (gateway/state.py), and a delivery is acknowledged only after the
  checkpoint that includes them; a handler that raises leaves no effect at all;
- emitted facts stay in the outbox until the broker confirms them, and are published
  again after a restart, so no fact is lost between a checkpoint and its PUBACK;
- the same event id is handled once (a window of recent ids, kept with the state);
- a fact's id is derived from its cause and its time is its cause's time (a timer's
  fact: the deadline), so a replay rebuilds the very same facts, which consumers drop;
- timers run on event time (the newest event time handled) while there is a backlog,
  and on the wall clock when the reactor is idle, so replaying a backlog after
  downtime does not fire timers that the backlog itself would have cancelled.
"""
from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from .errors import ConfigError, InvalidInput, Refused
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
from .service import event_message, ignored_retained
from .state import Changes, StateStore
from .topics import event_filter, validate_id
from .transport import Delivery, Message, Transport

log = logging.getLogger(__name__)

Emission = EventData | tuple[str, EventData]  # data about the key's subject, or (subject, data)
Handler = Callable[[Event, "Context"], Iterable[Emission] | None]
TimerHandler = Callable[["Context"], Iterable[Emission] | None]
DEDUPE_WINDOW = 20_000
CHECKPOINT_EVENTS = 500
CHECKPOINT_SECONDS = 0.05


class NoState(BaseModel):
    pass


class Reactor:
    """A plain registry of handlers: what a reactor consumes, emits and does."""

    def __init__(self, name: str, *, description: str = "", version: str = "1", state: type[BaseModel] = NoState,
                 settings: Any = None, drop_stale: bool = False, shared: bool = False, partitionable: bool = True) -> None:
        self.name = validate_id(name, "reactor name")
        self.description = description
        self.version = version
        self.state_model = state
        self.settings = settings  # replaced on SIGHUP; handlers read it through ctx.settings
        self.drop_stale = drop_stale  # drop events older (by their source's sequence) than one already seen
        self.shared = shared  # stateless: replicas may split the stream through a shared subscription
        self.partitionable = partitionable  # state is keyed by subject, so instances may split the subjects
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
        """(Re)start a timer that calls the reactor's timer handler `name` after `seconds` (event time)."""
        if name not in self._runner.reactor.timer_handlers:
            raise ValueError(f"{self._runner.reactor.name} has no timer handler {name!r}")
        self._runner.set_timer((key or self.key, name), Timer(self.now + timedelta(seconds=seconds), self._cause))

    def cancel_timer(self, name: str, key: str | None = None) -> None:
        self._runner.set_timer((key or self.key, name), None)

    def timer_running(self, name: str, key: str | None = None) -> bool:
        return (key or self.key, name) in self._runner.timers


def spec_of(reactor: Reactor, partition: tuple[int, int] | None = None) -> ServiceSpec:
    reads = tuple(event_filter(t) for t in reactor.consumes)
    if reactor.shared:
        reads = tuple(f"$share/{reactor.name}/{topic_filter}" for topic_filter in reads)
    emits = tuple(sorted({*reactor.emits, EventRejectedV1.event_type}))
    label = f"{partition[0]}-of-{partition[1]}" if partition else None
    return ServiceSpec(reactor.name, reads, reactor.consumes, emits, reactor.version, partition=label)


class ReactorRunner:
    """Runs one reactor against a transport: decode, dedupe, order, react, time, checkpoint, acknowledge."""

    def __init__(self, reactor: Reactor, transport: Transport, store: StateStore | None = None,
                 clock: Callable[[], datetime] = utc_now, partition: tuple[int, int] | None = None) -> None:
        if partition and not reactor.partitionable:
            raise ConfigError(f"{reactor.name} keeps state by something other than the subject: run one instance")
        self.reactor = reactor
        self.transport = transport
        self.store = store or StateStore(None)
        self.clock = clock
        self.partition = partition  # (index, count): handle only the subjects that hash to index
        self.spec = spec_of(reactor, partition)
        self.source = f"reactor/{reactor.name}"
        self.counts: Counter[str] = Counter()
        self.watermark: datetime | None = None  # the newest event time handled
        self._pending: list[Delivery] = []
        self._pending_since = 0.0
        self._changes = Changes(seen_window=DEDUPE_WINDOW)
        self._undo: dict[str, Any] | None = None
        self._restore(self.store.load())

    # -- state ---------------------------------------------------------------------------
    def _restore(self, snapshot: dict[str, Any]) -> None:
        model = self.reactor.state_model
        self.states: dict[str, BaseModel] = {k: model.model_validate(v) for k, v in snapshot.get("states", {}).items()}
        self.seen: OrderedDict[str, None] = OrderedDict.fromkeys(snapshot.get("seen", [])[-DEDUPE_WINDOW:])
        self.last_sequence: dict[str, int] = snapshot.get("sources", {})
        self.sequence: int = snapshot.get("sequence", 0)
        self.timers: dict[tuple[str, str], Timer] = {}
        self._timer_heap: list[tuple[datetime, str, str]] = []
        for key, name, deadline, cause in snapshot.get("timers", []):
            self._put_timer((key, name), Timer(datetime.fromisoformat(deadline), cause))
        self.outbox: dict[str, tuple[str, bytes]] = dict(snapshot.get("outbox", {}))
        self._changes.sequence = self.sequence
        self._confirming: set[str] = set()

    def state_of(self, key: str) -> Any:
        state = self.states.get(key)
        if self._undo is not None and key not in self._undo["states"]:
            # a JSON snapshot: much cheaper than a deep copy, and only parsed back if the handler raises
            self._undo["states"][key] = state.model_dump_json() if state is not None else None
        if state is None:
            state = self.states[key] = self.reactor.state_model()
        self._changes.states[key] = ""  # dirty: serialised at the checkpoint
        return state

    def set_timer(self, key: tuple[str, str], timer: Timer | None) -> None:
        if self._undo is not None and key not in self._undo["timers"]:
            self._undo["timers"][key] = self.timers.get(key)
        self._put_timer(key, timer)
        self._changes.timers[key] = None if timer is None else (timer.deadline.isoformat(), json.dumps(list(timer.cause)))

    def _put_timer(self, key: tuple[str, str], timer: Timer | None) -> None:
        if timer is None:
            self.timers.pop(key, None)  # its heap entry goes stale and is skipped
            return
        self.timers[key] = timer
        heapq.heappush(self._timer_heap, (timer.deadline, *key))

    # -- the loop ----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Handle deliveries until `stop` is set; raises Refused (after a checkpoint that acknowledges
        nothing) once the broker refuses a fact, which stays in the outbox for the next start."""
        self.republish_outbox()
        acknowledge = True
        try:
            while not stop.is_set():
                delivery = await self.transport.receive(timeout=self._wait())
                if delivery is not None:
                    self.process(delivery)
                    self.fire_due_timers(self.watermark)
                else:  # idle: nothing is queued, so event time has caught up with the clock
                    self.fire_due_timers(max(filter(None, (self.watermark, self.clock()))))
                if self._checkpoint_due():
                    self.checkpoint()
        except Refused:
            acknowledge = False
            raise
        finally:
            self.checkpoint(acknowledge)

    def _wait(self) -> float:
        waits = [0.5]
        if self._pending:
            waits.append(max(0.0, self._pending_since + CHECKPOINT_SECONDS - time.monotonic()))
        if self._timer_heap:
            waits.append(max(0.0, (self._timer_heap[0][0] - self.clock()).total_seconds()))
        return min(waits)

    def _checkpoint_due(self) -> bool:
        return bool(self._pending) and (len(self._pending) >= CHECKPOINT_EVENTS
                                        or time.monotonic() - self._pending_since >= CHECKPOINT_SECONDS)

    def process(self, delivery: Delivery) -> list[Event]:
        """Handle one delivery now; it is acknowledged after the next checkpoint."""
        facts = self.outcomes(delivery.message)
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(delivery)
        return facts

    def checkpoint(self, acknowledge: bool = True) -> None:
        """Commit every effect so far (state, timers, outbox, ids, sequence), then acknowledge
        the deliveries handled since the last checkpoint (unless told not to: they come again)."""
        changes, self._changes = self._changes, Changes(seen_window=DEDUPE_WINDOW, sequence=self.sequence)
        changes.states = {key: self.states[key].model_dump_json() for key in changes.states if key in self.states}
        changes.sequence = self.sequence
        if changes or self._pending:
            self.store.commit(changes)
        pending, self._pending = self._pending, []
        for delivery in pending if acknowledge else ():
            delivery.ack()

    # -- facts out -------------------------------------------------------------------------
    def _emit(self, facts: list[Event]) -> None:
        for fact in facts:
            message = event_message(fact)
            self.outbox[fact.id] = (message.topic, message.payload)
            self._changes.outbox[fact.id] = (message.topic, message.payload)
            self._publish(fact.id, message)

    def _publish(self, fact_id: str, message: Message) -> None:
        self._confirming.add(fact_id)
        self.transport.publish(message).add_done_callback(lambda future: self._confirmed(fact_id, future))

    def _confirmed(self, fact_id: str, future: asyncio.Future[None]) -> None:
        self._confirming.discard(fact_id)
        if future.cancelled() or future.exception() is not None:
            self.counts["publish_failures"] += 1  # stays in the outbox; published again at the next restart
            if not future.cancelled() and isinstance(future.exception(), Refused):
                log.error("%s keeps fact %s in its outbox and stops: fix the broker's ACL for %s, then restart it",
                          self.reactor.name, fact_id, self.reactor.name)
            return
        if self.outbox.pop(fact_id, None) is not None:
            self._changes.outbox[fact_id] = None

    def republish_outbox(self) -> None:
        """Publish again every fact not yet confirmed by the broker (after a restart)."""
        for fact_id, (topic, payload) in list(self.outbox.items()):
            if fact_id not in self._confirming:
                self._publish(fact_id, Message(topic, payload))
                self.counts["republished"] += 1

    # -- one event ---------------------------------------------------------------------
    def outcomes(self, message: Message) -> list[Event]:
        """Handle one inbound message: its facts (emitted, or a rejection) are in the outbox and returned."""
        facts = self._outcomes(message)
        self._emit(facts)
        return facts

    def _outcomes(self, message: Message) -> list[Event]:
        if ignored_retained(message, self.counts, self.reactor.name):
            return []
        try:
            event = decode_event(message.payload, topic=message.topic, now=self.clock())
        except InvalidInput as exc:
            return [self._rejected(message, exc.message, subject="unknown")]
        if self.partition and zlib.crc32(event.subject.encode()) % self.partition[1] != self.partition[0]:
            self.counts["other_partition"] += 1
            return []
        handler = self.reactor.handlers.get(event.type)
        if handler is None:
            return [self._rejected(message, f"{self.reactor.name} does not consume {event.type}", event.subject)]
        if self._is_duplicate(event.id):
            self.counts["duplicates"] += 1
            return []
        if self._is_stale(event) and self.reactor.drop_stale:
            self.counts["dropped_stale"] += 1
            return []
        self.counts["consumed"] += 1
        # event time drives timers while a backlog drains, but never past the clock: one device
        # whose clock runs ahead must not fire every other device's timers early
        self.watermark = max(filter(None, (self.watermark, min(event.time, self.clock()))))
        cause = (event.id, event.correlationid)
        try:
            with self._transaction():
                emissions = list(handler(event, Context(self, event.subject, event.time, cause)) or ())
                return self._facts(emissions, event.subject, event.time, cause, event.id)
        except Exception as exc:  # a failing handler must not stop the stream
            log.exception("%s failed on event %s", self.reactor.name, event.id)
            return [self._rejected(message, f"handler raised {type(exc).__name__}: {exc}", event.subject)]

    def fire_due_timers(self, now: datetime | None = None) -> list[Event]:
        """Run the handlers of every timer whose deadline is at or before `now`; their facts go out."""
        now = now or self.clock()
        facts: list[Event] = []
        while self._timer_heap and self._timer_heap[0][0] <= now:
            deadline, key, name = heapq.heappop(self._timer_heap)
            timer = self.timers.get((key, name))
            if timer is None or timer.deadline != deadline:
                continue  # cancelled or restarted since
            self.set_timer((key, name), None)
            self.counts["timers_fired"] += 1
            try:
                with self._transaction():
                    emissions = list(self.reactor.timer_handlers[name](Context(self, key, deadline, timer.cause)) or ())
                    facts += self._facts(emissions, key, deadline, timer.cause, f"{name}|{key}|{deadline.isoformat()}")
            except Exception:
                log.exception("%s timer %s for %s failed", self.reactor.name, name, key)
                self.counts["timer_failures"] += 1
        self._emit(facts)
        return facts

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Undo a handler's changes to state and timers if it raises."""
        self._undo = {"states": {}, "timers": {}, "sequence": self.sequence}
        try:
            yield
        except BaseException:
            undo, self._undo = self._undo, None
            for key, state in undo["states"].items():
                if state is None:
                    self.states.pop(key, None)
                else:
                    self.states[key] = self.reactor.state_model.model_validate_json(state)
            for key, timer in undo["timers"].items():
                self.set_timer(key, timer)
            self.sequence = undo["sequence"]
            raise
        finally:
            self._undo = None

    def _facts(self, emissions: list[Emission], subject: str, at: datetime, cause: tuple[str, str], seed: str) -> list[Event]:
        facts = []
        for index, emission in enumerate(emissions):
            about, data = emission if isinstance(emission, tuple) else (subject, emission)
            if data.event_type not in self.reactor.emits:
                raise TypeError(f"{self.reactor.name} emitted {data.event_type}, which it does not declare")
            event_id = derived_event_id(at, f"{self.reactor.name}|{seed}|{index}".encode())
            facts.append(new_event(data, source=self.source, subject=about, time=at, sequence=self._next_sequence(),
                                   caused_by=cause, event_id=event_id))
        for fact in facts:
            self.counts[f"emitted:{fact.type}"] += 1
        return facts

    def _rejected(self, message: Message, reason: str, subject: str) -> Event:
        self.counts["rejected"] += 1
        data = EventRejectedV1.of(reason=reason, rejected_by=self.source, topic=message.topic, payload=message.payload)
        key = f"{self.reactor.name}|rejected|{message.topic}".encode() + b"\0" + message.payload
        return new_event(data, source=self.source, subject=subject, sequence=self._next_sequence(),
                         event_id=derived_event_id(utc_now(), key))

    def _is_duplicate(self, event_id: str) -> bool:
        if event_id in self.seen:
            return True
        self.seen[event_id] = None
        self._changes.seen.append(event_id)
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
            self.last_sequence[event.source] = self._changes.sources[event.source] = event.sequence
            return False
        self.counts["late"] += 1
        return True

    def _next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence
