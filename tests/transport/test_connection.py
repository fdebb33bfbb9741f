"""What the client does when the broker misbehaves, against scripted brokers on loopback:
a broker gone silent (a partition that drops packets), one busy for a while, one that sends
bytes that are not MQTT, one that disconnects with a reason. Mosquitto does none of these on cue."""
from __future__ import annotations

import asyncio

import pytest

from gateway.errors import TransportError
from gateway.transport import ClientConfig, Message, MqttTransport
from tests.helpers import async_wait_for
from tests.transport.scripted import PINGREQ, ScriptedBroker, serve

CONNACK_ACCEPTED = b"\x20\x03\x00\x00\x00"
CONNACK_SERVER_BUSY = b"\x20\x03\x00\x89\x00"
CONNACK_KEEP_ALIVE_1 = b"\x20\x06\x00\x00\x03\x13\x00\x01"  # Server Keep Alive: 1 s (MQTT 5, 3.2.2.3.14)
PINGRESP = b"\xd0\x00"


async def test_a_broker_gone_silent_is_left_after_its_keep_alive_and_connected_again():
    def silent_after_connack(connection, first_byte, body, writer):
        if first_byte == 0x10:
            writer.write(CONNACK_KEEP_ALIVE_1)  # then nothing, not even PINGRESP

    broker = ScriptedBroker(silent_after_connack)
    server, port = await serve(broker)
    async with server, MqttTransport(ClientConfig("partitioned", port=port, keepalive=60)) as transport:
        # the broker's keep-alive of 1 s replaces the client's 60 s: PINGREQ at 0.5 s, given up after 1.5 s
        await async_wait_for(lambda: broker.connections == 2, 6, "a new connection after the silence")
        assert broker.pings(1) >= 2
        await async_wait_for(lambda: transport.stats.reconnects == 1, 5, "the reconnect")


async def test_a_live_broker_answering_pings_keeps_the_connection():
    def answers_pings(connection, first_byte, body, writer):
        if first_byte == 0x10:
            writer.write(CONNACK_KEEP_ALIVE_1)
        elif first_byte == PINGREQ:
            writer.write(PINGRESP)

    broker = ScriptedBroker(answers_pings)
    server, port = await serve(broker)
    async with server, MqttTransport(ClientConfig("alive", port=port)) as transport:
        await async_wait_for(lambda: broker.pings(1) >= 5, 6, "five pings answered")
        assert broker.connections == 1 and transport.is_connected


async def test_a_busy_broker_is_tried_again_until_it_accepts():
    def busy_at_first(connection, first_byte, body, writer):
        if first_byte == 0x10:
            writer.write(CONNACK_SERVER_BUSY if connection == 1 else CONNACK_ACCEPTED)

    broker = ScriptedBroker(busy_at_first)
    server, port = await serve(broker)
    async with server, MqttTransport(ClientConfig("patient", port=port)) as transport:
        assert transport.is_connected and broker.connections == 2


async def test_bytes_that_are_not_mqtt_close_the_connection_and_the_client_comes_back():
    def garbage_once(connection, first_byte, body, writer):
        if first_byte == 0x10:
            writer.write(CONNACK_ACCEPTED)
            if connection == 1:
                writer.write(b"\x36\x05\x00\x01t\x00\x01")  # a PUBLISH at QoS 3 (MQTT 5, 3.3.1.2)
        elif first_byte & 0xF0 == 0x30:
            writer.write(b"\x40\x02" + body[3:5])  # PUBACK for topic "t"

    broker = ScriptedBroker(garbage_once)
    server, port = await serve(broker)
    async with server, MqttTransport(ClientConfig("robust", port=port)) as transport:
        confirmation = transport.publish(Message("t", b"after"))
        await asyncio.wait_for(confirmation, 10)
        assert broker.connections == 2 and transport.stats.reconnects == 1


async def test_a_disconnect_from_the_broker_is_logged_with_its_reason_and_the_client_reconnects(caplog):
    def takes_over_once(connection, first_byte, body, writer):
        if first_byte == 0x10:
            writer.write(CONNACK_ACCEPTED)
            if connection == 1:
                writer.write(b"\xe0\x01\x8e")  # DISCONNECT: session taken over
                writer.close()

    broker = ScriptedBroker(takes_over_once)
    server, port = await serve(broker)
    async with server, MqttTransport(ClientConfig("taken-over", port=port)) as transport:
        await async_wait_for(lambda: transport.stats.reconnects == 1, 10, "the reconnect")
    assert "the broker is closing the connection: session taken over (0x8e)" in caplog.text


async def test_a_subscription_whose_suback_was_lost_with_the_connection_is_made_on_the_next():
    def drops_the_first_subscribe(connection, first_byte, body, writer):
        if first_byte == 0x10:
            writer.write(CONNACK_ACCEPTED)
        elif first_byte == 0x82:
            if connection == 1:
                writer.transport.abort()
            else:
                writer.write(b"\x90\x04" + body[:2] + b"\x00\x01")  # SUBACK: granted QoS 1

    broker = ScriptedBroker(drops_the_first_subscribe)
    server, port = await serve(broker)
    async with server, MqttTransport(ClientConfig("resubscriber", port=port)) as transport:
        await transport.subscribe("a/#")
        assert broker.connections == 2
        assert [first_byte for _, first_byte in broker.received].count(0x82) == 2


async def test_a_broker_that_speaks_only_mqtt_3_refuses_the_first_connect_for_good():
    def mqtt_3_only(connection, first_byte, body, writer):
        if first_byte == 0x10:
            writer.write(b"\x20\x02\x00\x01")  # MQTT 3.1.1 CONNACK: unacceptable protocol version (3.2.2.3)
            writer.close()

    broker = ScriptedBroker(mqtt_3_only)
    server, port = await serve(broker)
    async with server:
        with pytest.raises(TransportError, match=r"refused client 'old-broker'.*\(0x01\)"):
            await MqttTransport(ClientConfig("old-broker", port=port)).__aenter__()
    assert broker.connections == 1
