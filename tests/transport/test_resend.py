"""What the transport puts on the wire when it sends a publish again, against a scripted broker.

Mosquitto always acknowledges, so a publish lost with its connection cannot be arranged there
reliably; this broker reads one PUBLISH, drops the connection without a PUBACK, and on the
reconnect says the session is still present, so the client must send the publish again, marked
as a duplicate (MQTT 5, 3.3.1.1).
"""
from __future__ import annotations

import asyncio

from gateway.transport import ClientConfig, Message, MqttTransport
from gateway.transport.framing import split_packets
from gateway.transport.packets import PUBLISH, parse_publish

CONNACK_NEW_SESSION = b"\x20\x03\x00\x00\x00"
CONNACK_SESSION_PRESENT = b"\x20\x03\x01\x00\x00"
DUP = 0x08


class OnePublishLostBroker:
    def __init__(self) -> None:
        self.publishes: list[tuple[int, int]] = []  # (connection, first byte) of each PUBLISH received
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection, buffer = self.connections, b""
        while True:
            data = await reader.read(65536)
            if not data:
                return
            packets, buffer = split_packets(buffer + data)
            for first_byte, body in packets:
                if first_byte == 0x10:  # CONNECT
                    writer.write(CONNACK_NEW_SESSION if connection == 1 else CONNACK_SESSION_PRESENT)
                elif first_byte & 0xF0 == PUBLISH:
                    self.publishes.append((connection, first_byte))
                    if connection == 1:
                        writer.transport.abort()  # lost before its PUBACK
                        return
                    _, mid = parse_publish(first_byte, body)
                    writer.write(b"\x40\x02" + mid.to_bytes(2, "big"))


async def test_a_publish_sent_again_after_a_reconnect_carries_the_dup_flag():
    broker = OnePublishLostBroker()
    server = await asyncio.start_server(broker.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, MqttTransport(ClientConfig("resender", port=port)) as transport:
        await asyncio.wait_for(transport.publish(Message("t/1", b"once")), 10)
    assert broker.publishes == [(1, 0x32), (2, 0x32 | DUP)]  # QoS 1: first without, then with DUP
