"""A loopback TCP proxy under the test's control, to put network faults between a client and a server.

- `cut()`: every connection is reset at once and new ones are reset as they arrive, as when a
  link goes down and the host answers with RST.
- `blackhole()`: nothing gets through in either direction and nobody is told, as in a network
  partition: bytes wait (TCP would retransmit them) and connects hang. A client notices only by
  its keepalive; a connection both ends still hold resumes intact on `restore()`.
- `restore()`: forward again.
"""
from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0  # connections forwarded to the target so far
        self._cut = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        self.cut()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    def cut(self) -> None:
        self._cut = True
        self._flowing.set()  # paused pipes wake up to find their connections reset
        for writer in list(self._writers):
            writer.transport.abort()

    def blackhole(self) -> None:
        self._flowing.clear()

    def restore(self) -> None:
        self._cut = False
        self._flowing.set()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)
        await self._flowing.wait()  # during a blackhole even the connect waits
        if self._cut:
            client_writer.transport.abort()
            return
        try:
            target_reader, target_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self.connections += 1
        self._writers |= {client_writer, target_writer}
        try:
            await asyncio.gather(self._pipe(client_reader, target_writer), self._pipe(target_reader, client_writer))
        finally:
            self._writers -= {client_writer, target_writer}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while not self._cut:
                await self._flowing.wait()
                data = await reader.read(65536)
                await self._flowing.wait()  # what arrives in a blackhole, bytes or a hang-up, waits for its end
                if not data or self._cut:
                    break
                writer.write(data)
                await writer.drain()
        if self._cut:
            writer.transport.abort()
        else:
            writer.close()  # the other side hung up: pass it on
