"""MQTT 5 transport on the project's own codec and asyncio protocol, with no client library
(chosen by bench/mqtt_clients.py: docs/decisions/0002-own-mqtt-client.md).

Packets are decoded as bytes arrive (connection.py), and everything sent in one event-loop turn,
PUBLISH and PUBACK above all, goes out in one write.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any, Self

from ..errors import Refused, TransportError
from .base import ClientConfig, Delivery, InboundQueue, Message, TransportStats, refused_publish, wake
from .connection import Connection
from .control import (
    CONNACK,
    DISCONNECT,
    DISCONNECT_NORMALLY,
    PINGRESP,
    RECEIVE_MAXIMUM_DEFAULT,
    SUBACK,
    Connack,
    connect_packet,
    parse_connack,
    parse_disconnect,
    parse_suback,
    subscribe_packet,
)
from .framing import MalformedPacket
from .inflight import Inflight
from .packets import PACKET_TYPE, puback_packet, publish_packet
from .reasons import FIRST_REFUSAL, reason_name

log = logging.getLogger(__name__)

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0
MAX_BACKLOG = 1_000_000
# CONNACK refusals no retry can fix (MQTT 3.1.1 and 5, 3.2.2.2).
PERMANENT_REFUSALS = frozenset({1, 2, 4, 5, 129, 130, 132, 133, 134, 135, 138, 140, 144, 149, 153, 154, 155, 156, 157})
CONNECT_TIMEOUT = 10.0  # for the network connection, TLS and the CONNACK together
SUBACK_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
MAX_PACKET_ID = 65535


class ConnectRefused(Exception):
    """The broker answered CONNECT with a failure reason code."""

    def __init__(self, connack: Connack) -> None:
        super().__init__(reason_name(connack.reason_code) + (f": {connack.reason}" if connack.reason else ""))
        self.connack = connack


class MqttTransport:
    """One MQTT 5 client: QoS 1, persistent session, reconnect with backoff, bounded inbound queue."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.stats = TransportStats()
        self._inbound = InboundQueue(config.queue_size, self.stats)
        self._inflight = Inflight()
        # QoS 1 publishes wait here while the broker's receive maximum of them is unacknowledged,
        # or while there is no connection.
        self._backlog: deque[tuple[Message, asyncio.Future[None]]] = deque()
        self._send_window = RECEIVE_MAXIMUM_DEFAULT - 2
        self._max_packet_size: int | None = None
        self._connection: Connection | None = None
        self._connack: asyncio.Future[Connack] | None = None
        self._online = False  # CONNACK received on the current connection
        self._connection_count = 0  # a delivery from an earlier connection must not be acknowledged
        self._unacknowledged = 0  # QoS 1 deliveries received on this connection and not yet acknowledged
        self._acknowledged: asyncio.Future[None] | None = None  # receive() waiting for room
        # Everything sent in one event-loop turn, written together: one system call for a burst.
        self._outgoing = bytearray()
        self._subscriptions: dict[str, tuple[int, int]] = {}  # filter -> (QoS, retain handling), for reconnects
        self._subacks: dict[int, str] = {}  # packet id of a SUBSCRIBE -> its filter
        self._subscribing: dict[str, asyncio.Future[int]] = {}  # filter -> subscribe() waiting for its SUBACK
        self._last_packet_id = 0
        self._closing = False
        self._refusal: Refused | None = None  # the first publish the broker refused: receive() raises it
        self._planned_outage: float | None = None
        self._backoff = INITIAL_BACKOFF
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def is_connected(self) -> bool:
        return self._online

    async def __aenter__(self) -> Self:
        # kept: asyncio.get_running_loop() makes a getpid() system call each time
        self._loop = asyncio.get_running_loop()
        await self._connect_with_backoff(first=True)
        self._supervisor = self._loop.create_task(self._stay_connected())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing = True
        connection = self._connection
        try:
            if self._online and connection is not None:
                await self.flush(timeout=5.0)
                self._write_outgoing()
                connection.write(DISCONNECT_NORMALLY)
                connection.close()
                await asyncio.wait([connection.closed], timeout=CLOSE_TIMEOUT)
        finally:
            if self._supervisor is not None:
                self._supervisor.cancel()
                await asyncio.wait([self._supervisor])
            if self._connection is not None:
                self._connection.abort()

    # -- connecting ----------------------------------------------------------------------------
    async def _connect_with_backoff(self, first: bool) -> None:
        """Connect, retrying an unreachable broker and refusals that can pass. On the first connect
        a refusal no retry can fix is raised; later it is logged and retried, as the broker's
        accounts may be put right while the service waits."""
        delay = INITIAL_BACKOFF
        config = self.config
        while True:
            try:
                await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT)
                return
            except ConnectRefused as exc:
                if exc.connack.reason_code in PERMANENT_REFUSALS and first:
                    raise TransportError(
                        f"broker {config.host}:{config.port} refused client {config.client_id!r}: {exc}",
                        retryable=False) from None
                log.warning("broker refused %r (%s); retrying in %.1fs", config.client_id, exc, delay)
            except ssl.SSLError as exc:  # a certificate problem does not pass by waiting
                if first:
                    raise TransportError(f"TLS with broker {config.host}:{config.port} failed: {exc}",
                                         retryable=False) from None
                log.error("TLS with broker %s:%s failed (%s); retrying in %.1fs", config.host, config.port, exc, delay)
            except (OSError, TimeoutError) as exc:
                log.warning("broker %s:%s not reachable (%s); retrying in %.1fs",
                            config.host, config.port, getattr(exc, "strerror", None) or str(exc) or "timed out", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    async def _connect(self) -> None:
        loop, config = self._loop, self.config
        self._connack = loop.create_future()
        self._connection = None
        try:
            _, connection = await loop.create_connection(lambda: Connection(self, loop), config.host, config.port,
                                                         ssl=config.tls)
            self._connection = connection
            connection.write(connect_packet(config))
            answer_or_close: list[asyncio.Future[Any]] = [self._connack, connection.closed]
            await asyncio.wait(answer_or_close, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            if self._connection is not None:
                self._connection.abort()
            raise
        if not self._connack.done():
            raise ConnectionError("the broker closed the connection before answering CONNECT")
        connack = self._connack.result()
        if not connack.accepted:
            connection.abort()
            raise ConnectRefused(connack)

    async def _stay_connected(self) -> None:
        """Reconnect whenever the connection is lost, until the transport closes."""
        while not self._closing:
            connection = self._connection
            if connection is not None:
                await asyncio.wait([connection.closed])
            delay = self._connection_lost()
            if self._closing:
                return
            await asyncio.sleep(delay)
            await self._connect_with_backoff(first=False)

    def _connection_lost(self) -> float:
        """Forget the connection's state; the delay before connecting again."""
        self._online = False
        self._outgoing.clear()  # publishes are in the inflight store; acknowledgements are void now
        self._subacks.clear()  # their SUBACKs will not come; a subscribe() still waiting is sent again
        if self._closing:
            return 0.0
        if self._planned_outage is not None:
            delay, self._planned_outage = self._planned_outage, None
            return delay
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)
        log.warning("lost the broker connection; reconnecting in %.1fs", self._backoff)
        return self._backoff

    def _session_started(self, connack: Connack) -> None:
        """CONNACK accepted: resume or restart the session. Runs before any packet that followed
        CONNACK in the same read, so deliveries belong to this connection."""
        self._send_window = max(1, connack.receive_maximum - 2)
        self._max_packet_size = connack.maximum_packet_size
        self._backoff = INITIAL_BACKOFF
        if self._connection_count:
            self.stats.reconnects += 1
            log.info("reconnected to broker (session %s)", "kept" if connack.session_present else "new")
        # The broker sends again whatever was not acknowledged on the old connection (MQTT 5, 4.4),
        # so an acknowledgement due from then could only hit a packet id it has reused: drop them.
        self._connection_count += 1
        self._unacknowledged = 0
        wake(self._acknowledged)
        assert self._connection is not None
        self._connection.start_keepalive(connack.keepalive if connack.keepalive is not None else self.config.keepalive)
        self._online = True
        if connack.session_present and self._inflight:
            self._write_soon(self._inflight.again())
        else:
            self._backlog.extendleft(reversed(self._inflight.forget()))
        self._resubscribe(connack.session_present)
        self._send_backlog()
        if self.config.birth is not None:
            self.publish(self.config.birth)

    def _resubscribe(self, session_present: bool) -> None:
        # Mosquitto 2.0.11 restores a session from its persistence file without its shared
        # subscriptions (tests/transport/test_mqtt.py shows it), so those are always made again;
        # a shared subscription has no retained messages and is not duplicated. A subscription
        # whose SUBACK was lost with the connection is sent again too.
        for topic_filter, (qos, retain_handling) in self._subscriptions.items():
            if not session_present or topic_filter.startswith("$share/") or topic_filter in self._subscribing:
                self._send_subscribe(topic_filter, qos, retain_handling)

    def admit_with(self, admit: Callable[[Message], bool]) -> None:
        self._inbound.admit = admit

    def drop_connection(self, offline_for: float) -> None:
        self._planned_outage = offline_for
        if self._connection is not None:
            self._connection.abort()

    # -- packets from the broker (called by Connection as bytes arrive) --------------------------
    def publish_received(self, message: Message, mid: int | None) -> None:
        """A QoS 0 or 1 delivery; QoS 1 is acknowledged when the consumer says so, in one write
        per loop turn with everything else."""
        if mid is None:
            self._inbound.offer(Delivery(message))
            return
        connection = self._connection_count
        self._unacknowledged += 1
        self._inbound.offer(Delivery(message, lambda: self._acknowledge(mid, connection)))

    def puback_received(self, mid: int, reason_code: int) -> None:
        """The broker answered one of our publishes: settle its future and send from the backlog."""
        entry = self._inflight.entries.pop(mid, None)  # answered: forgotten
        if entry is None:
            log.debug("a PUBACK for packet id %d, which is not in flight", mid)
            return
        future = entry[2]
        if reason_code < FIRST_REFUSAL:
            if not future.done():
                future.set_result(None)
        else:
            refusal = refused_publish(entry[1].topic, reason_code, self.stats)
            self._refusal = self._refusal or refusal
            if not future.done():
                future.set_exception(refusal)
        if self._backlog:
            self._send_backlog()

    def control_received(self, first_byte: int, body: bytes) -> None:
        kind = first_byte & PACKET_TYPE
        if kind == CONNACK:
            self._connack_received(parse_connack(body))
        elif kind == SUBACK:
            self._suback_received(*parse_suback(body))
        elif kind == DISCONNECT:
            reason_code, reason = parse_disconnect(body)
            log.warning("the broker is closing the connection: %s%s", reason_name(reason_code),
                        f" ({reason})" if reason else "")
        elif kind != PINGRESP:
            raise MalformedPacket(f"an unexpected packet of type {kind >> 4}")

    def _connack_received(self, connack: Connack) -> None:
        if self._connack is None or self._connack.done():
            raise MalformedPacket("a second CONNACK")
        if connack.accepted:
            self._session_started(connack)
        self._connack.set_result(connack)

    def _suback_received(self, mid: int, reason_codes: tuple[int, ...]) -> None:
        topic_filter = self._subacks.pop(mid, None)
        if topic_filter is None:
            return
        reason_code = reason_codes[0] if reason_codes else FIRST_REFUSAL
        waiter = self._subscribing.get(topic_filter)
        if waiter is not None and not waiter.done():
            waiter.set_result(reason_code)
        elif reason_code >= FIRST_REFUSAL:
            log.error("the broker refused the subscription to %s again: %s", topic_filter, reason_name(reason_code))

    # -- sending --------------------------------------------------------------------------------
    def _acknowledge(self, mid: int, connection: int) -> None:
        if connection != self._connection_count:
            log.debug("not acknowledging a delivery from an earlier connection; the broker sends it again")
            return
        self._unacknowledged -= 1
        wake(self._acknowledged)
        self._write_soon(puback_packet(mid))

    def _write_soon(self, packet: bytes) -> None:
        if not self._outgoing:
            self._loop.call_soon(self._write_outgoing)
        self._outgoing += packet

    def _write_outgoing(self) -> None:
        """Write what was queued in this loop turn; without a connection it is dropped, because
        unacknowledged publishes are kept in flight and sent again after the reconnect."""
        data, self._outgoing = bytes(self._outgoing), bytearray()
        if data and self._online and self._connection is not None:
            self._connection.write(data)

    def _new_packet_id(self) -> int:
        """The next packet id not in use by a publish or subscription in flight (MQTT 5, 2.2.1)."""
        mid = self._last_packet_id
        while True:
            mid = mid % MAX_PACKET_ID + 1
            if mid not in self._inflight.entries and mid not in self._subacks:
                self._last_packet_id = mid
                return mid

    def _send_subscribe(self, topic_filter: str, qos: int, retain_handling: int) -> None:
        mid = self._new_packet_id()
        self._subacks[mid] = topic_filter
        self._write_soon(subscribe_packet(mid, topic_filter, qos, retain_handling))

    async def subscribe(self, *filters: str, qos: int = 1, retained: str = "always") -> None:
        """Subscribe and wait for the broker's answer; a refused filter raises Refused.

        `retained="new"` asks for retained messages only when the subscription is new to the
        session (MQTT 5 retain handling 1), so a restart does not replay them as fresh facts.
        """
        retain_handling = {"always": 0, "new": 1}[retained]
        if qos not in (0, 1):
            raise ValueError(f"subscriptions are at QoS 0 or 1, not {qos}")
        for topic_filter in filters:
            reason_code = await self._subscribe_one(topic_filter, qos, retain_handling)
            if reason_code >= FIRST_REFUSAL:
                self._subscriptions.pop(topic_filter, None)
                raise Refused(f"the broker refused the subscription to {topic_filter}: {reason_name(reason_code)}",
                              topic=topic_filter, reason_code=reason_code)

    async def _subscribe_one(self, topic_filter: str, qos: int, retain_handling: int) -> int:
        waiter: asyncio.Future[int] = self._loop.create_future()
        self._subscribing[topic_filter] = waiter
        self._subscriptions[topic_filter] = (qos, retain_handling)
        if self._online:  # otherwise it is sent on the reconnect
            self._send_subscribe(topic_filter, qos, retain_handling)
        try:
            return await asyncio.wait_for(waiter, SUBACK_TIMEOUT)
        except TimeoutError:
            raise TransportError(f"no answer to the subscription to {topic_filter}", topic=topic_filter) from None
        finally:
            if self._subscribing.get(topic_filter) is waiter:
                del self._subscribing[topic_filter]

    def publish(self, message: Message) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self._loop.create_future()
        if message.qos == 0 and not self._online:  # at most once: nothing keeps it for the reconnect
            self.stats.publish_failures += 1
            future.set_exception(TransportError(f"not connected: a QoS 0 message to {message.topic[:128]} is not kept",
                                                topic=message.topic))
            return future
        if message.qos > 0 and (self._backlog or len(self._inflight.entries) >= self._send_window or not self._online):
            if len(self._backlog) >= MAX_BACKLOG:
                self.stats.publish_failures += 1
                future.set_exception(TransportError(f"publish backlog full ({MAX_BACKLOG}); broker not acknowledging",
                                                    topic=message.topic))
            else:
                self._backlog.append((message, future))
            return future
        self._send(message, future)
        return future

    def _send_backlog(self) -> None:
        while self._backlog and self._online and len(self._inflight.entries) < self._send_window:
            self._send(*self._backlog.popleft())

    def _send(self, message: Message, future: asyncio.Future[None]) -> None:
        mid = self._new_packet_id() if message.qos else None
        try:
            packet = publish_packet(message, mid)
            if self._max_packet_size is not None and len(packet) > self._max_packet_size:
                raise ValueError(f"a packet of {len(packet)} bytes exceeds the broker's maximum packet size "
                                 f"({self._max_packet_size})")
        except ValueError as exc:
            self.stats.publish_failures += 1
            future.set_exception(TransportError(f"publish to {message.topic[:128]} failed: {exc}", topic=message.topic))
            return
        self._write_soon(packet)
        self.stats.published += 1
        if mid is None:
            future.set_result(None)
        else:  # kept until PUBACK: sent again after a reconnect that kept the session
            self._inflight.entries[mid] = (packet, message, future)

    # -- receiving ------------------------------------------------------------------------------
    async def receive(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery; at most `receive_maximum` of them unacknowledged in the consumer's hands.

        A broker should never send more (MQTT 5, 4.9), but Mosquitto 2.0.11 does once acknowledgements
        flow; the surplus waits here as received, not as work in progress (docs/guarantees.md, How it holds).
        Raises Refused once the broker has refused one of our publishes.
        """
        if self._refusal is not None:
            raise self._refusal
        if self._in_hand() >= self.config.receive_maximum:
            self.stats.held_back += 1
            self._acknowledged = self._loop.create_future()
            try:
                await asyncio.wait_for(self._acknowledged, timeout)
            except TimeoutError:
                return None
            finally:
                self._acknowledged = None
        return await self._inbound.get(timeout)

    async def gather(self, seconds: float) -> None:
        connection = self._connection
        if connection is None:
            return
        connection.pause_reading()
        try:
            await asyncio.sleep(seconds)
        finally:
            connection.resume_reading()

    def _in_hand(self) -> int:
        return self._unacknowledged - len(self._inbound)  # received minus still queued

    async def flush(self, timeout: float) -> bool:
        futures = self._inflight.futures() + [future for _, future in self._backlog]
        if not futures:
            return True
        done, _ = await asyncio.wait(futures, timeout=timeout)
        return len(done) == len(futures)
