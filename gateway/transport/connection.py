"""One network connection to the broker: bytes in as packets, bytes out, and the keep-alive.

The packets are handed to a `PacketHandler` as soon as bytes arrive, in arrival order, without
a reading task in between: PUBLISH and PUBACK, nearly all the traffic, each to a method of
their own, every other packet to `control_received`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol, cast

from .base import Message
from .control import PINGREQ_PACKET
from .framing import MalformedPacket, split_packets
from .packets import PACKET_TYPE, PUBACK, PUBLISH, parse_puback, parse_publish

log = logging.getLogger(__name__)

SILENCE_LIMIT = 1.5  # keep-alive periods without a byte from the broker before the link counts as dead (3.1.2.10)


class PacketHandler(Protocol):
    def publish_received(self, message: Message, mid: int | None) -> None: ...

    def puback_received(self, mid: int, reason_code: int) -> None: ...

    def control_received(self, first_byte: int, body: bytes) -> None: ...


class Connection(asyncio.Protocol):
    """The asyncio protocol of one connection; `closed` resolves when it is gone, for any reason."""

    def __init__(self, handler: PacketHandler, loop: asyncio.AbstractEventLoop) -> None:
        self.handler = handler
        self.closed: asyncio.Future[None] = loop.create_future()
        self.last_received = time.monotonic()
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._unparsed = b""
        self._keepalive: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport, though uvloop's do not derive from asyncio.Transport
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.closed.done():
            return  # bytes that were on their way when the connection was given up
        self.last_received = time.monotonic()
        publish_received, puback_received = self.handler.publish_received, self.handler.puback_received
        try:
            packets, self._unparsed = split_packets(self._unparsed + data if self._unparsed else data)
            for first_byte, body in packets:
                kind = first_byte & PACKET_TYPE
                if kind == PUBLISH:
                    if first_byte & 0x06 == 0x04:
                        # every subscription asks for at most QoS 1, so the broker may not send QoS 2 (3.8.4)
                        raise MalformedPacket("a PUBLISH at QoS 2, above every subscription's QoS")
                    publish_received(*parse_publish(first_byte, body))
                elif kind == PUBACK:
                    puback_received(*parse_puback(body))
                else:
                    self.handler.control_received(first_byte, body)
        except MalformedPacket as exc:
            log.error("closing the connection: the broker sent %s", exc)
            self.abort()

    def eof_received(self) -> bool:
        return False  # the broker closed its side: close ours

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_keepalive()
        if not self.closed.done():
            self.closed.set_result(None)

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self.closed.done():
            self._transport.write(data)

    def pause_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def close(self) -> None:
        """Close after what was written is sent."""
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close at once, without a goodbye: the broker publishes the will."""
        self.stop_keepalive()
        if self._transport is not None:
            self._transport.abort()

    def start_keepalive(self, keepalive: int) -> None:
        """PINGREQ twice per keep-alive period, and the connection given up once the broker has been
        silent for SILENCE_LIMIT periods: a partition that drops packets silently is noticed."""
        if keepalive > 0:
            self._keepalive = self._loop.call_later(keepalive / 2, self._keepalive_tick, keepalive)

    def stop_keepalive(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None

    def _keepalive_tick(self, keepalive: int) -> None:
        silent = time.monotonic() - self.last_received
        if silent > keepalive * SILENCE_LIMIT:
            log.warning("no answer from the broker for %.0f s (keep-alive %d s); closing the connection",
                        silent, keepalive)
            self.abort()
            return
        self.write(PINGREQ_PACKET)
        self._keepalive = self._loop.call_later(keepalive / 2, self._keepalive_tick, keepalive)
