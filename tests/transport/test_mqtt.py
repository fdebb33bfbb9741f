"""What only a real broker can show: sessions, redelivery, reconnects and refusals."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.errors import TransportError
from gateway.transport import ClientConfig, Message, MqttTransport
from tests.helpers import MqttObserver, async_wait_for, wait_for
from tests.transport.test_behaviour import receive_all

pytestmark = pytest.mark.integration


def admin_config(stack, name: str, **options) -> ClientConfig:
    return ClientConfig(name, port=stack.broker.port, username="admin", password=stack.credentials.mqtt["admin"],
                        **options)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_unacknowledged_delivery_comes_back_after_reconnect(stack):
    client_id, root = unique("consumer"), unique("redeliver")
    async with MqttTransport(admin_config(stack, client_id)) as consumer:
        await consumer.subscribe(root)
        async with MqttTransport(admin_config(stack, unique("pub"))) as publisher:
            await publisher.publish(Message(root, b"first"))
            await publisher.publish(Message(root, b"second"))
        first = await consumer.receive(timeout=10)
        first.ack()
        second = await consumer.receive(timeout=10)
        assert second.message.payload == b"second"  # received but never acknowledged
    async with MqttTransport(admin_config(stack, client_id)) as consumer:
        [again] = await receive_all(consumer, 1)
        assert again.payload == b"second"


async def test_persistent_session_keeps_messages_while_offline(stack):
    client_id, root = unique("offline"), unique("session")
    async with MqttTransport(admin_config(stack, client_id)) as consumer:
        await consumer.subscribe(f"{root}/#")
    async with MqttTransport(admin_config(stack, unique("pub"))) as publisher:
        for n in range(5):
            publisher.publish(Message(f"{root}/{n}", str(n).encode()))
        assert await publisher.flush(timeout=5)
    async with MqttTransport(admin_config(stack, client_id)) as consumer:
        received = await receive_all(consumer, 5)
        assert [m.payload for m in received] == [b"0", b"1", b"2", b"3", b"4"]


async def test_reconnects_and_resubscribes_after_a_broker_restart(fresh_stack):
    root = unique("restart")
    async with MqttTransport(admin_config(fresh_stack, unique("sub"), clean_start=True, session_expiry=0)) as consumer:
        await consumer.subscribe(root)
        fresh_stack.broker.stop()
        fresh_stack.broker.start()  # same port; this session did not survive (expiry 0)
        await async_wait_for(lambda: not consumer.is_connected, 10, "the disconnect to be noticed")
        await delivered_after_restart(fresh_stack, consumer, root)


async def delivered_after_restart(stack, consumer: MqttTransport, topic: str) -> None:
    """Publish with an independent client until the consumer receives it."""
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], unique("paho")) as paho:

        async def delivered() -> bool:
            paho.publish(topic, b"after-restart")
            delivery = await consumer.receive(timeout=0.5)
            return delivery is not None and delivery.message.payload == b"after-restart"

        await async_wait_for(delivered, 30, "a delivery after the restart")


async def test_a_kept_session_gets_its_shared_subscription_back_after_a_broker_restart(fresh_stack):
    """Mosquitto 2.0.11 restores the session from its persistence file but not a shared subscription."""
    topic = unique("shared-restart")
    async with MqttTransport(admin_config(fresh_stack, unique("sub"))) as consumer:
        await consumer.subscribe(f"$share/{unique('group')}/{topic}")
        fresh_stack.broker.stop()
        fresh_stack.broker.start()
        await async_wait_for(lambda: consumer.stats.reconnects == 1, 30, "the reconnect (session kept)")
        await delivered_after_restart(fresh_stack, consumer, topic)


async def test_publishes_made_while_disconnected_are_sent_after_reconnect(fresh_stack):
    root = unique("outage")
    async with MqttTransport(admin_config(fresh_stack, unique("pub"))) as publisher:
        fresh_stack.broker.stop()
        await async_wait_for(lambda: not publisher.is_connected, 10, "the disconnect to be noticed")
        confirmation = publisher.publish(Message(root, b"kept", retain=True))
        failures = publisher.stats.publish_failures
        at_most_once = publisher.publish(Message(root + "/qos0", b"not kept", qos=0))
        assert "not connected" in str(at_most_once.exception())  # failed and counted, not reported as sent
        assert publisher.stats.publish_failures == failures + 1
        fresh_stack.broker.start()
        await async_wait_for(lambda: confirmation.done(), 30, "the broker to acknowledge the publish")
        assert confirmation.exception() is None
    with MqttObserver(fresh_stack.broker.port, "admin", fresh_stack.credentials.mqtt["admin"], unique("paho")) as paho:
        paho.subscribe(root)
        wait_for(lambda: paho.on(root), 10, "the retained message")
        assert paho.on(root)[0].payload == b"kept"


async def test_wrong_password_is_a_clear_permanent_error(stack):
    config = ClientConfig(unique("intruder"), port=stack.broker.port, username="ingest", password="wrong")
    with pytest.raises(TransportError) as raised:
        async with MqttTransport(config):
            pass
    assert not raised.value.retryable
    assert "refused client" in raised.value.message


async def test_anonymous_clients_are_refused(stack):
    with pytest.raises(TransportError):
        async with MqttTransport(ClientConfig(unique("anon"), port=stack.broker.port)):
            pass


async def test_publishes_outlive_a_lost_session_and_free_their_packet_ids(fresh_stack):
    """600 publishes in flight when the session is lost, then 600 more: the broker allows 1,000 at once."""
    root = unique("lost-session")
    config = admin_config(fresh_stack, unique("pub"), clean_start=True, session_expiry=0)
    async with MqttTransport(config) as publisher:
        fresh_stack.broker.stop()
        await async_wait_for(lambda: not publisher.is_connected, 10, "the disconnect to be noticed")
        before = [publisher.publish(Message(f"{root}/a{n}", b"x", retain=True)) for n in range(600)]
        fresh_stack.broker.start()
        await async_wait_for(lambda: publisher.is_connected, 30, "the reconnect")
        after = [publisher.publish(Message(f"{root}/b{n}", b"y", retain=True)) for n in range(600)]
        assert await publisher.flush(timeout=30)
        assert all(f.exception() is None for f in before + after)
        assert publisher.stats.publish_failures == 0 and publisher.stats.reconnects == 1
    with MqttObserver(fresh_stack.broker.port, "admin", fresh_stack.credentials.mqtt["admin"], unique("paho")) as paho:
        paho.subscribe(f"{root}/#")
        wait_for(lambda: len(paho.on(root)) == 1200, 20, "1,200 retained messages")


async def test_replicas_split_a_shared_subscription_within_their_acl(stack):
    """Stateless reactors scale out through MQTT 5 shared subscriptions under their own account."""
    def replica(name: str) -> MqttTransport:
        return MqttTransport(ClientConfig(unique(name), port=stack.broker.port, username="threshold",
                                          password=stack.credentials.mqtt["threshold"], clean_start=True,
                                          session_expiry=0))

    group, root = unique("group"), unique("shared")
    async with replica("a") as a, replica("b") as b, MqttTransport(admin_config(stack, unique("pub"))) as publisher:
        for transport in (a, b):
            await transport.subscribe(f"$share/{group}/events/reading.v1/+")
        for n in range(20):
            publisher.publish(Message(f"events/reading.v1/{root}-{n}", b"%d" % n))
        assert await publisher.flush(timeout=10)
        received = {"a": [], "b": []}

        async def all_arrived() -> bool:
            for name, transport in (("a", a), ("b", b)):
                while (delivery := await transport.receive(timeout=0.05)) is not None:
                    delivery.ack()
                    received[name].append(int(delivery.message.payload))
            return len(received["a"]) + len(received["b"]) >= 20

        await async_wait_for(all_arrived, 10, "20 deliveries across the replicas")
    assert sorted(received["a"] + received["b"]) == list(range(20))  # each message to exactly one replica
    assert received["a"] and received["b"]


@pytest.mark.parametrize("size", [0, 1, 100, 127 - 8, 128, 16_383, 16_384, 200_000])
async def test_publish_packets_of_every_length_encoding_reach_an_independent_client(stack, size):
    """Our PUBLISH encoder around the one-, two- and three-byte remaining-length boundaries
    (the topic and packet id add a few bytes), at QoS 1 and at QoS 0 (no packet id)."""
    topic = unique("size")
    payload = bytes(n % 251 for n in range(size))
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], unique("paho")) as paho:
        paho.subscribe(f"{topic}/#")
        async with MqttTransport(admin_config(stack, unique("pub"), clean_start=True, session_expiry=0)) as publisher:
            await publisher.publish(Message(f"{topic}/q1", payload))
            await publisher.publish(Message(f"{topic}/q0", payload, qos=0))
            await async_wait_for(lambda: paho.on(f"{topic}/q1") and paho.on(f"{topic}/q0"), 10, "both messages")
    assert paho.on(f"{topic}/q1")[0].payload == payload
    assert paho.on(f"{topic}/q0")[0].payload == payload


async def test_a_topic_too_long_for_mqtt_fails_its_publish_alone(stack):
    async with MqttTransport(admin_config(stack, unique("pub"), clean_start=True, session_expiry=0)) as publisher:
        refused = publisher.publish(Message("t" * 70_000, b"x"))
        with pytest.raises(TransportError, match="exceeds MQTT's 65535"):
            await refused
        await publisher.publish(Message(unique("after"), b"still works"))
        assert publisher.stats.publish_failures == 1


async def test_the_consumer_never_holds_more_than_the_receive_maximum_unacknowledged(stack):
    """Mosquitto 2.0.11 sends beyond a client's receive maximum once acknowledgements flow (with 10,
    over 700 unacknowledged were seen); the surplus must wait in the transport, not reach the consumer."""
    root, count = unique("flood"), 5000
    config = admin_config(stack, unique("consumer"), clean_start=True, session_expiry=0, receive_maximum=10)
    async with MqttTransport(config) as consumer:
        await consumer.subscribe(f"{root}/#")
        in_hand, most, received = 0, 0, 0

        def acknowledge(delivery):
            nonlocal in_hand
            in_hand -= 1
            delivery.ack()

        async with MqttTransport(admin_config(stack, unique("pub"), clean_start=True, session_expiry=0)) as publisher:
            for n in range(count):
                publisher.publish(Message(f"{root}/{n % 50}", b"x"))
            while received < count:
                delivery = await consumer.receive(timeout=10)
                assert delivery is not None, f"only {received} of {count} arrived"
                received, in_hand = received + 1, in_hand + 1
                most = max(most, in_hand)
                asyncio.get_running_loop().call_soon(acknowledge, delivery)  # a little later, as consumers do
            assert await publisher.flush(timeout=10)
    assert most <= 10


async def test_user_properties_reach_and_come_from_an_independent_client(stack):
    topic = unique("props")
    sent = (("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), ("site", "lab"))
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], unique("paho")) as paho:
        paho.subscribe(f"{topic}/ours")
        async with MqttTransport(admin_config(stack, unique("sub"), clean_start=True, session_expiry=0)) as ours:
            await ours.subscribe(f"{topic}/paho")
            await ours.publish(Message(f"{topic}/ours", b"x", user_properties=sent))
            properties = Properties(PacketTypes.PUBLISH)
            properties.UserProperty = [("from", "paho"), ("n", "2")]
            paho.client.publish(f"{topic}/paho", b"y", qos=1, properties=properties).wait_for_publish(10)
            [received] = await receive_all(ours, 1)
        wait_for(lambda: paho.on(f"{topic}/ours"), 10, "our message at paho")
    assert received.user_properties == (("from", "paho"), ("n", "2"))
    assert paho.on(f"{topic}/ours")[0].properties.UserProperty == list(sent)


async def test_while_gathering_nothing_is_read_and_afterwards_everything_is(stack):
    root = unique("gather")
    async with MqttTransport(admin_config(stack, unique("gatherer"))) as consumer, \
            MqttTransport(admin_config(stack, unique("observer"))) as observer:
        await consumer.subscribe(root)
        await observer.subscribe(root)
        gathering = asyncio.ensure_future(consumer.gather(10))
        async with MqttTransport(admin_config(stack, unique("pub"))) as publisher:
            for n in range(5):
                publisher.publish(Message(root, str(n).encode()))
        await receive_all(observer, 5)  # the broker sent them to both subscribers
        assert not gathering.done()
        assert consumer.stats.received == 0  # they wait in the socket
        await gathering
        assert [m.payload for m in await receive_all(consumer, 5)] == [b"0", b"1", b"2", b"3", b"4"]
