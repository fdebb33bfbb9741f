"""Test a reactor without a broker, or through a real one, with the same few calls.

    harness = ReactorHarness(threshold.build(settings))
    facts = await harness.send(ReadingV1(...), subject="lab-temperature-1")
    facts += await harness.advance(seconds=30)   # runs out timers on the harness's clock
    harness.restart()                            # a new process from the last checkpoint

`BrokerReactorHarness` does the same through a real MQTT broker: events are published
to it and the reactor's facts are read back from it by another client.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .events import Event, EventData, decode_event, new_event
from .reactor import Reactor, ReactorRunner
from .service import event_message
from .state import StateStore
from .topics import event_filter
from .transport import ClientConfig, MemoryBroker, MemoryTransport, Message, MqttTransport, Transport

START = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


class ReactorHarness:
    """Feeds events to a reactor in memory and returns the facts it emits."""

    def __init__(self, reactor: Reactor, start: datetime = START) -> None:
        self.reactor = reactor
        self.now = start
        self.store = StateStore(None)  # an in-memory database that outlives restarts of the runner
        self.transport: Transport = MemoryTransport(MemoryBroker(), ClientConfig(reactor.name))
        self.runner = self._new_runner()
        self.sequence = 0

    def _new_runner(self) -> ReactorRunner:
        return ReactorRunner(self.reactor, self.transport, self.store, clock=lambda: self.now)

    def event(self, data: EventData, *, subject: str, source: str | None = None, at: datetime | None = None,
              cause: Event | None = None, sequence: int | None = None) -> Event:
        """An event as a producer would publish it; by default from device/{subject}, now, next sequence."""
        self.sequence += 1
        return new_event(data, source=source or f"device/{subject}", subject=subject, time=at or self.now,
                         sequence=self.sequence if sequence is None else sequence, cause=cause)

    async def send(self, data: EventData | Event, **options: Any) -> list[Event]:
        event = data if isinstance(data, Event) else self.event(data, **options)
        return await self.send_message(event_message(event))

    async def send_message(self, message: Message) -> list[Event]:
        return self.runner.outcomes(message)

    async def advance(self, seconds: float) -> list[Event]:
        """Move the clock on (nothing is queued, so event time follows it) and return the timers' facts."""
        self.now += timedelta(seconds=seconds)
        return self.runner.fire_due_timers(self.now)

    def restart(self) -> None:
        """Checkpoint, then continue as a new process that loaded that checkpoint."""
        self.runner.checkpoint()
        self.runner = self._new_runner()


class BrokerReactorHarness(ReactorHarness):
    """The same calls through a real broker: the reactor's own account receives, an admin observes."""

    def __init__(self, reactor: Reactor, *, port: int, reactor_password: str, admin_password: str,
                 host: str = "127.0.0.1", start: datetime = START) -> None:
        super().__init__(reactor, start)
        name = reactor.name
        self.transport = MqttTransport(ClientConfig(f"{name}-harness", host=host, port=port, username=name,
                                                    password=reactor_password, clean_start=True, session_expiry=0))
        self.observer = MqttTransport(ClientConfig(f"{name}-observer", host=host, port=port, username="admin",
                                                   password=admin_password, clean_start=True, session_expiry=0))
        self.runner = self._new_runner()

    async def __aenter__(self) -> BrokerReactorHarness:
        await self.transport.__aenter__()
        await self.observer.__aenter__()
        await self.transport.subscribe(*self.runner.spec.reads)
        await self.observer.subscribe(*(event_filter(t) for t in self.runner.spec.emits))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.observer.__aexit__(*exc_info)
        await self.transport.__aexit__(*exc_info)

    async def send_message(self, message: Message) -> list[Event]:
        """Publish, then let the reactor handle what it receives up to and including that message
        (it may first receive facts it consumes and published itself), as its run loop would."""
        await self.observer.publish(message)
        facts: list[Event] = []
        while True:
            delivery = await self.transport.receive(timeout=10)
            if delivery is None:
                raise AssertionError(f"the reactor did not receive {message.topic}")
            facts += self.runner.process(delivery)
            self.runner.checkpoint()
            if delivery.message.payload == message.payload:
                return await self._observed(facts)

    async def advance(self, seconds: float) -> list[Event]:
        self.now += timedelta(seconds=seconds)
        return await self._observed(self.runner.fire_due_timers(self.now))

    async def _observed(self, facts: list[Event]) -> list[Event]:
        """The facts as another client received them from the broker, in publish order."""
        wanted = {(fact.id, fact.type) for fact in facts}  # a fact in two versions shares one id
        seen: dict[tuple[str, str], Event] = {}
        while wanted - set(seen):
            delivery = await self.observer.receive(timeout=10)
            if delivery is None:
                raise AssertionError(f"facts never reached the broker: {sorted(wanted - set(seen))}")
            delivery.ack()
            event = decode_event(delivery.message.payload)
            if (event.id, event.type) in wanted:
                seen[event.id, event.type] = event
        return [seen[fact.id, fact.type] for fact in facts]
