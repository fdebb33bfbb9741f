"""The reactor runtime, through the in-memory transport."""
import asyncio
from datetime import datetime, timedelta, timezone

from gateway.events import AlertRaisedV1, Event, Measurement, ReadingV1, decode_event, new_event
from gateway.reactor import ReactorRunner
from gateway.topics import event_topic
from gateway.errors import TransportError
from gateway.transport import ClientConfig, Delivery, MemoryBroker, MemoryTransport, Message

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)


def reading(value: float, at: float = 0.0, subject: str = "temp-1") -> Event:
    data = ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=value)])
    return new_event(data, source=f"device/{subject}", subject=subject, time=T0 + timedelta(seconds=at))


class Echo:
    """Raises an alert for every reading; fails on a value of 13; emits undeclared types on 99."""

    name = "echo"
    consumes = ("reading.v1",)
    emits = ("alert.raised.v1",)

    def react(self, event):
        value = event.data.measurements[0].value
        if value == 13:
            raise RuntimeError("unlucky")
        if value == 99:
            return [ReadingV1(measurements=event.data.measurements)]
        return [AlertRaisedV1(alert="echo", metric="temperature", value=value, limit=0, unit="Cel", above_seconds=0)]


def message_of(event: Event) -> Message:
    return Message(event_topic(event.type, event.subject), event.to_json())


async def run_through(reactor, messages: list[Message]) -> list[Event]:
    """Feed messages through a runner on a memory broker; return every event it published."""
    broker = MemoryBroker()
    async with MemoryTransport(broker, ClientConfig("runner")) as transport:
        runner = ReactorRunner(reactor, transport)
        await transport.subscribe(*runner.spec.reads)
        for message in messages:
            broker.route(message)
        while (delivery := await transport.receive(timeout=0)) is not None:
            runner.process(delivery)
    return [decode_event(m.payload) for m in broker.history if m.topic.startswith("events/") and m not in messages]


async def test_emitted_facts_carry_causation_correlation_and_source():
    cause = reading(21.0)
    [alert] = await run_through(Echo(), [message_of(cause)])
    assert alert.type == "alert.raised.v1"
    assert alert.causationid == cause.id and alert.correlationid == cause.correlationid
    assert alert.source == "reactor/echo" and alert.subject == "temp-1" and alert.sequence == 1


async def test_the_same_event_delivered_twice_has_its_effect_once():
    cause = message_of(reading(21.0))
    emitted = await run_through(Echo(), [cause, cause, cause])
    assert len(emitted) == 1


async def test_a_failing_handler_becomes_a_rejection_and_the_stream_goes_on():
    emitted = await run_through(Echo(), [message_of(reading(13.0)), message_of(reading(14.0))])
    assert [e.type for e in emitted] == ["event.rejected.v1", "alert.raised.v1"]
    assert emitted[0].data.reason == "handler raised RuntimeError: unlucky"
    assert emitted[0].data.rejected_by == "reactor/echo"


async def test_undeclared_emissions_are_refused():
    [rejected] = await run_through(Echo(), [message_of(reading(99.0))])
    assert "echo emitted reading.v1, which it does not declare" in rejected.data.reason


async def test_invalid_events_become_rejections():
    bad = Message("events/reading.v1/temp-1", b'{"type": "reading.v1"}')
    [rejected] = await run_through(Echo(), [bad])
    assert rejected.type == "event.rejected.v1" and rejected.subject == "unknown"
    assert rejected.data.excerpt == '{"type": "reading.v1"}'


async def test_a_delivery_is_acknowledged_only_when_every_publish_succeeded():
    loop = asyncio.get_running_loop()
    first, second, ack = loop.create_future(), loop.create_future(), loop.create_future()
    Delivery(message_of(reading(1.0)), ack).ack_when([first, second])
    first.set_result(None)
    await asyncio.sleep(0)
    assert not ack.done()
    second.set_result(None)
    await asyncio.wait_for(ack, 1)


async def test_a_failed_publish_leaves_the_delivery_unacknowledged():
    loop = asyncio.get_running_loop()
    failed, ack = loop.create_future(), loop.create_future()
    Delivery(message_of(reading(1.0)), ack).ack_when([failed])
    failed.set_exception(TransportError("publish backlog full"))
    await asyncio.sleep(0)
    assert not ack.done()
