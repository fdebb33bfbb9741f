"""A scripted MQTT broker on loopback, for what Mosquitto does not do on cue: go silent, refuse,
send bytes that are not MQTT, or lose a packet with its connection."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gateway.transport.framing import split_packets

PINGREQ = 0xC0
Script = Callable[[int, int, bytes, asyncio.StreamWriter], Awaitable[None] | None]


class ScriptedBroker:
    """Calls `script(connection number, first byte, body, writer)` for every packet a client sends."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.received: list[tuple[int, int]] = []  # (connection, first byte)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection, buffer = self.connections, b""
        while data := await reader.read(65536):
            packets, buffer = split_packets(buffer + data)
            for first_byte, body in packets:
                self.received.append((connection, first_byte))
                self.script(connection, first_byte, body, writer)
        writer.close()

    def pings(self, connection: int) -> int:
        return sum(1 for number, first_byte in self.received if number == connection and first_byte == PINGREQ)


async def serve(broker: ScriptedBroker) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(broker.handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]
