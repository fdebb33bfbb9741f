"""What the transport puts on the wire when it sends a publish again, against a scripted broker.

Mosquitto always acknowledges, so a publish lost with its connection cannot be arranged there
reliably; this broker reads one PUBLISH, drops the connection without a PUBACK, and on the
reconnect says the session is still present, so the client must send the publish again, marked
as a duplicate (MQTT 5, 3.3.1.1).
"""
from __future__ import annotations

import asyncio

from gateway.transport import ClientConfig, Message, MqttTransport
from gateway.transport.packets import DUP, PUBLISH, parse_publish
from tests.transport.scripted import ScriptedBroker, serve

CONNACK_NEW_SESSION = b"\x20\x03\x00\x00\x00"
CONNACK_SESSION_PRESENT = b"\x20\x03\x01\x00\x00"


def loses_the_first_publish(connection, first_byte, body, writer):
    if first_byte == 0x10:  # CONNECT
        writer.write(CONNACK_NEW_SESSION if connection == 1 else CONNACK_SESSION_PRESENT)
    elif first_byte & 0xF0 == PUBLISH:
        if connection == 1:
            writer.transport.abort()  # lost before its PUBACK
        else:
            _, mid = parse_publish(first_byte, body)
            writer.write(b"\x40\x02" + mid.to_bytes(2, "big"))


async def test_a_publish_sent_again_after_a_reconnect_carries_the_dup_flag():
    broker = ScriptedBroker(loses_the_first_publish)
    server, port = await serve(broker)
    async with server, MqttTransport(ClientConfig("resender", port=port)) as transport:
        await asyncio.wait_for(transport.publish(Message("t/1", b"once")), 10)
    publishes = [(connection, first_byte) for connection, first_byte in broker.received
                 if first_byte & 0xF0 == PUBLISH]
    assert publishes == [(1, 0x32), (2, 0x32 | DUP)]  # QoS 1: first without, then with DUP
