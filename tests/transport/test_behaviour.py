"""One behaviour suite for both transports: the in-memory twin and the MQTT client on a real Mosquitto."""
from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from gateway.errors import Refused
from gateway.transport import ClientConfig, MemoryBroker, MemoryTransport, Message, MqttTransport, Transport
from tests.helpers import async_wait_for

Factory = Callable[..., Transport]


@pytest.fixture(params=["memory", "mosquitto"])
def make_transport(request) -> Factory:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    # read_only: an account the broker lets publish nothing (the shipped ACL's `monitor`)
    if request.param == "memory":
        broker = MemoryBroker()

        def memory_factory(name: str, read_only: bool = False, **options) -> Transport:
            if read_only:
                broker.deny(f"{prefix}-{name}", "#")
            return MemoryTransport(broker, ClientConfig(f"{prefix}-{name}", **options))

        return memory_factory
    stack = request.getfixturevalue("stack")

    def factory(name: str, read_only: bool = False, **options) -> Transport:
        account = "monitor" if read_only else "admin"
        return MqttTransport(ClientConfig(f"{prefix}-{name}", port=stack.broker.port, username=account,
                                          password=stack.credentials.mqtt[account], **options))

    return factory


def topic(base: str) -> str:
    return f"test/{uuid.uuid4().hex[:8]}/{base}"


async def receive_all(transport: Transport, count: int, timeout: float = 10.0) -> list[Message]:
    received: list[Message] = []

    async def got_all() -> bool:
        while len(received) < count and (delivery := await transport.receive(timeout=0.1)) is not None:
            received.append(delivery.message)
            delivery.ack()
        return len(received) >= count

    await async_wait_for(got_all, timeout, f"{count} messages")
    return received


async def test_wildcard_subscription_receives_in_order(make_transport):
    root = topic("x")
    async with make_transport("sub") as subscriber, make_transport("pub") as publisher:
        await subscriber.subscribe(f"{root}/+/telemetry")
        confirmations = [publisher.publish(Message(f"{root}/d{n}/telemetry", str(n).encode())) for n in range(20)]
        publisher.publish(Message(f"{root}/d1/status", b"ignored"))
        received = await receive_all(subscriber, 20)
        assert [m.payload for m in received] == [str(n).encode() for n in range(20)]
        assert all(m.qos == 1 for m in received)
        assert await publisher.flush(timeout=5)
        assert all(c.done() and c.exception() is None for c in confirmations)


async def test_retained_message_is_delivered_on_subscribe(make_transport):
    status = topic("status")
    async with make_transport("pub") as publisher:
        await publisher.publish(Message(status, b"online", retain=True))
    async with make_transport("sub") as subscriber:
        await subscriber.subscribe(status)
        [message] = await receive_all(subscriber, 1)
        assert message.payload == b"online" and message.retain


async def test_qos0_overflow_is_dropped_and_counted(make_transport):
    root = topic("flood")
    async with make_transport("sub", queue_size=5) as subscriber, make_transport("pub") as publisher:
        await subscriber.subscribe(root, qos=0)
        for n in range(50):
            publisher.publish(Message(root, str(n).encode(), qos=0))
        await async_wait_for(lambda: subscriber.stats.received == 50, 10, "50 QoS 0 deliveries")
        assert subscriber.stats.dropped == 45
        assert len(await receive_all(subscriber, 5)) == 5


async def test_qos1_overflow_waits_instead_of_dropping(make_transport):
    root = topic("flood")
    async with make_transport("sub", queue_size=3) as subscriber, make_transport("pub") as publisher:
        await subscriber.subscribe(root)
        for n in range(40):
            publisher.publish(Message(root, str(n).encode()))
        received = await receive_all(subscriber, 40)
        assert [int(m.payload) for m in received] == list(range(40))
        assert subscriber.stats.dropped == 0


async def test_subscription_filters_must_match_exactly(make_transport):
    root = topic("exact")
    async with make_transport("sub") as subscriber, make_transport("pub") as publisher:
        await subscriber.subscribe(f"{root}/a")
        publisher.publish(Message(f"{root}/a/b", b"deeper"))
        publisher.publish(Message(f"{root}/b", b"sibling"))
        publisher.publish(Message(f"{root}/a", b"match"))
        [message] = await receive_all(subscriber, 1)
        assert message.payload == b"match"
        assert await subscriber.receive(timeout=0.3) is None


async def test_a_burst_beyond_the_brokers_receive_maximum_is_sent_in_order(make_transport):
    root = topic("burst")  # the shipped broker config allows 1,000 unacknowledged QoS 1 messages per client
    async with make_transport("sub") as subscriber, make_transport("pub") as publisher:
        await subscriber.subscribe(root)
        confirmations = [publisher.publish(Message(root, str(n).encode())) for n in range(5000)]
        received = await receive_all(subscriber, 5000, timeout=30)
        assert [int(m.payload) for m in received] == list(range(5000))
        assert await publisher.flush(timeout=10)
        assert all(c.exception() is None for c in confirmations)
        assert publisher.stats.publish_failures == 0


async def test_retained_on_resubscribe_only_when_asked(make_transport):
    status = topic("status")
    async with make_transport("pub") as publisher:
        await publisher.publish(Message(status, b"online", retain=True))
    async with make_transport("sub") as subscriber:
        await subscriber.subscribe(status, retained="new")
        assert len(await receive_all(subscriber, 1)) == 1
        await subscriber.subscribe(status, retained="new")  # already subscribed: no replay
        assert await subscriber.receive(timeout=0.3) is None


async def test_a_refused_publish_fails_with_the_reason_and_stops_the_consumer(make_transport):
    root = topic("denied")
    async with make_transport("sub") as subscriber, make_transport("pub", read_only=True) as publisher:
        await subscriber.subscribe(root)
        with pytest.raises(Refused, match=f"refused the publish to {root}: not authorized \\(0x87\\)") as refused:
            await publisher.publish(Message(root, b"never delivered"))
        assert refused.value.topic == root and not refused.value.retryable
        assert publisher.stats.refused == 1 and publisher.stats.publish_failures == 1
        with pytest.raises(Refused):  # a consumer that went on would drop what it makes from its input
            await publisher.receive(timeout=0.1)
        assert await subscriber.receive(timeout=0.3) is None


async def test_user_properties_pass_through_in_order(make_transport):
    root = topic("props")
    properties = (("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                  ("k", "1"), ("k", "\u00e9"))
    async with make_transport("sub") as subscriber, make_transport("pub") as publisher:
        await subscriber.subscribe(root)
        await publisher.publish(Message(root, b"with", user_properties=properties))
        await publisher.publish(Message(root, b"without"))
        with_properties, without = await receive_all(subscriber, 2)
        assert with_properties.user_properties == properties
        assert without.user_properties == ()


async def test_the_will_is_published_when_the_connection_dies_and_the_birth_on_every_connect(make_transport):
    status = topic("status")
    will, birth = Message(status, b"offline", retain=True), Message(status, b"online", retain=True)
    async with make_transport("watcher") as watcher:
        await watcher.subscribe(status)
        async with make_transport("device", will=will, birth=birth, keepalive=5) as device:
            assert [m.payload for m in await receive_all(watcher, 1)] == [b"online"]
            device.drop_connection(offline_for=0.2)  # no goodbye: the broker publishes the will
            assert [m.payload for m in await receive_all(watcher, 2)] == [b"offline", b"online"]
            await async_wait_for(lambda: device.stats.reconnects == 1, 10, "the reconnect")
        # A clean close sends no will. The first birth may come once more: a publish whose PUBACK
        # was still unread as the connection dropped is sent again on the next one (at least once).
        late: list[bytes] = []
        while (delivery := await watcher.receive(timeout=0.3)) is not None:
            late.append(delivery.message.payload)
        assert set(late) <= {b"online"}
