"""Runs one reactor against a transport: filter, react, time, checkpoint, acknowledge."""
from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from types import TracebackType

from ..errors import ConfigError, InvalidInput, Refused
from ..events import Event, decode_event, utc_now
from ..rejection import UNKNOWN_SUBJECT
from ..service import Gathering, ignored_retained
from ..state import Changes, StateStore
from ..transport import Delivery, Message, Transport
from ..upcast import as_version
from .committer import Committer
from .context import Context
from .facts import FactMaker
from .inputs import InputFilter
from .keyed import KeyedStates
from .outbox import Outbox
from .registry import Emission, Reactor, spec_of
from .timers import Timers

log = logging.getLogger(__name__)

DEDUPE_WINDOW = 20_000
CHECKPOINT_EVENTS = 500
CHECKPOINT_SECONDS = 0.05


class ReactorRunner:
    """Runs one reactor: each delivery's effects (state, timers, facts in the outbox) are committed
    together in a checkpoint, and the delivery is acknowledged only after it."""

    def __init__(self, reactor: Reactor, transport: Transport, store: StateStore | None = None,
                 clock: Callable[[], datetime] = utc_now, partition: tuple[int, int] | None = None,
                 gather: float = 0.0) -> None:
        if partition and not reactor.partitionable:
            raise ConfigError(f"{reactor.name} keeps state by something other than the subject: run one instance")
        self.reactor = reactor
        self.transport = transport
        self.deliveries = Gathering(transport, gather)
        self.store = store or StateStore(None)
        self.clock = clock
        self.partition = partition  # (index, count): handle only the subjects that hash to index
        self.spec = spec_of(reactor, partition)
        self.counts: Counter[str] = Counter()
        self.watermark: datetime | None = None  # the newest event time handled
        self.lag_seconds: float | None = None  # how long after it was emitted the latest event was handled
        stored = self.store.load()
        self.states = KeyedStates(reactor.state_model, stored["states"])
        self.timers = Timers(stored["timers"])
        self.outbox = Outbox(reactor.name, transport, stored["outbox"], self.counts)
        self.inputs = InputFilter(stored["seen"], stored["sources"], DEDUPE_WINDOW, self.counts)
        self.facts = FactMaker(reactor, stored["sequence"], self.counts)
        self._pending: list[Delivery] = []  # handled, to be acknowledged after the next checkpoint
        self._pending_since = 0.0
        self.committer = Committer(self.store, reactor.name)
        self.transaction = Transaction(self.states, self.timers, self.facts)

    # -- the loop ----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Handle deliveries until `stop` is set; raises Refused (after a checkpoint that acknowledges
        nothing) once the broker refuses a fact, which stays in the outbox for the next start."""
        self.outbox.republish()
        acknowledge = True
        try:
            while not stop.is_set():
                delivery = await self.deliveries.next(timeout=self._wait())
                if delivery is not None:
                    self.process(delivery)
                    self.fire_due_timers(self.watermark)
                else:  # idle: nothing is queued, so event time has caught up with the clock
                    self.fire_due_timers(max(filter(None, (self.watermark, self.clock()))))
                if self._checkpoint_due():
                    await self.committer.submit(*self._take_checkpoint())  # committed off the loop
        except Refused:
            acknowledge = False
            raise
        finally:
            try:
                await self.committer.settle()  # a failed commit raises here: nothing after it is committed
                self.checkpoint(acknowledge)
            finally:
                self.committer.close()

    def _wait(self) -> float:
        waits = [0.5]
        if self._pending:
            waits.append(max(0.0, self._pending_since + CHECKPOINT_SECONDS - time.monotonic()))
        deadline = self.timers.next_deadline()
        if deadline is not None:
            waits.append(max(0.0, (deadline - self.clock()).total_seconds()))
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
        changes, pending = self._take_checkpoint()
        if changes or pending:
            self.store.commit(changes)
        for delivery in pending if acknowledge else ():
            delivery.ack()

    def _take_checkpoint(self) -> tuple[Changes, list[Delivery]]:
        """Every effect since the last checkpoint, and the deliveries that caused them; forgets both."""
        seen, sources = self.inputs.changes()
        changes = Changes(states=self.states.changes(), seen=seen, seen_window=DEDUPE_WINDOW, sources=sources,
                          timers=self.timers.changes(), outbox=self.outbox.changes(), sequence=self.facts.sequence)
        pending, self._pending = self._pending, []
        return changes, pending

    # -- one event ---------------------------------------------------------------------
    def outcomes(self, message: Message) -> list[Event]:
        """Handle one inbound message: its facts (emitted, or a rejection) are in the outbox and returned."""
        facts = self._outcomes(message)
        if facts:
            self.outbox.add(facts)
        return facts

    def _outcomes(self, message: Message) -> list[Event]:
        if ignored_retained(message, self.counts, self.reactor.name):
            return []
        now = self.clock()
        try:
            event = decode_event(message.payload, topic=message.topic, now=now)
        except InvalidInput as exc:
            return [self.facts.rejected(message, exc.message, UNKNOWN_SUBJECT, now)]
        if self.partition and zlib.crc32(event.subject.encode()) % self.partition[1] != self.partition[0]:
            self.counts["other_partition"] += 1
            return []
        route = self.reactor.route(event.type)
        if route is None:
            return [self.facts.rejected(message, f"{self.reactor.name} does not consume {event.type}",
                                        event.subject, event.time)]
        handler, version = route
        if not self.inputs.first_time(event.id):
            self.counts["duplicates"] += 1
            return []
        if self.inputs.is_late(event) and self.reactor.drop_stale:
            self.counts["dropped_stale"] += 1
            return []
        self.counts["consumed"] += 1
        wall_clock = now if self.clock is utc_now else utc_now()  # a test's clock may differ from the wall's
        self.lag_seconds = (wall_clock - (event.emittedtime or event.time)).total_seconds()
        self._advance_watermark(min(event.time, now))
        cause = (event.id, event.correlationid)
        try:
            if version != event.type:
                event = as_version(event, version)
                self.counts[f"upcast:{event.type}"] += 1
            with self.transaction:
                emissions = list(handler(event, self._context(event.subject, event.time, cause)) or ())
                return self.facts.make(emissions, event.subject, event.time, cause, event.id)
        except Exception as exc:  # a failing handler must not stop the stream
            log.exception("%s failed on event %s", self.reactor.name, event.id)
            return [self.facts.rejected(message, f"handler raised {type(exc).__name__}: {exc}",
                                        event.subject, event.time)]

    def _advance_watermark(self, moment: datetime) -> None:
        """Event time drives timers while a backlog drains, but never past the clock (the caller caps
        `moment` at it): one device whose clock runs ahead must not fire every other device's timers early."""
        if self.watermark is None or moment > self.watermark:
            self.watermark = moment

    def fire_due_timers(self, now: datetime | None = None) -> list[Event]:
        """Run the handlers of every timer whose deadline is at or before `now`; their facts go out."""
        facts: list[Event] = []
        for (key, name), timer in self.timers.due(now or self.clock()):
            self.counts["timers_fired"] += 1
            seed = f"{name}|{key}|{timer.deadline.isoformat()}"
            try:
                with self.transaction:
                    emissions: list[Emission] = list(
                        self.reactor.timer_handlers[name](self._context(key, timer.deadline, timer.cause)) or ())
                    facts += self.facts.make(emissions, key, timer.deadline, timer.cause, seed)
            except Exception:
                log.exception("%s timer %s for %s failed", self.reactor.name, name, key)
                self.counts["timer_failures"] += 1
        self.outbox.add(facts)
        return facts

    def _context(self, key: str, now: datetime, cause: tuple[str, str]) -> Context:
        return Context(self.reactor, self.states, self.timers, key, now, cause)


class Transaction:
    """Undoes a handler's changes to state, timers and the sequence if it raises; reused for every handler
    call (a class, not a generator-based context manager: this runs once per event)."""

    def __init__(self, states: KeyedStates, timers: Timers, facts: FactMaker) -> None:
        self.states = states
        self.timers = timers
        self.facts = facts

    def __enter__(self) -> None:
        self.states.begin()
        self.timers.begin()
        self.facts.begin()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is not None:
            self.states.roll_back()
            self.timers.roll_back()
            self.facts.roll_back()
        self.states.end()
        self.timers.end()
        self.facts.end()
