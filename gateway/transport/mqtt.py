"""MQTT 5 transport on gmqtt, with its own per-message path (chosen by bench/mqtt_clients.py:
docs/decisions/0001-mqtt-client.md).

gmqtt connects, subscribes, keeps the connection alive and reconnects; PUBLISH and PUBACK, nearly
all the traffic, are encoded and decoded here (packets.py) and written once per event-loop turn.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, Self

import gmqtt
from gmqtt.mqtt.connection import MQTTConnection
from gmqtt.mqtt.handler import MQTTConnectError
from gmqtt.mqtt.package import Package
from gmqtt.mqtt.protocol import BaseMQTTProtocol, MQTTProtocol
from gmqtt.storage import PersistentStorage

from ..errors import Refused, TransportError
from .base import ClientConfig, Delivery, InboundQueue, Message, TransportStats, refused_publish
from .packets import (
    PACKET_TYPE,
    PUBACK,
    PUBLISH,
    MalformedPacket,
    parse_puback,
    parse_publish,
    puback_packet,
    publish_packet,
    resent,
    split_packets,
)
from .reasons import FIRST_REFUSAL, reason_name

log = logging.getLogger(__name__)

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0
MQTT_RECEIVE_MAXIMUM = 65535  # what a CONNACK without a Receive Maximum means (MQTT 5, 3.2.2.3.3)
MAX_BACKLOG = 1_000_000
# CONNACK refusals no retry can fix (MQTT 3.1.1 and 5); the same sets gmqtt does not retry.
PERMANENT_REFUSALS = frozenset({1, 2, 4, 5, 129, 130, 132, 133, 134, 135, 138, 140, 144, 149, 153, 154, 155, 156, 157})
SUCCESS = 0
SUBACK_TIMEOUT = 10.0


class _InflightStore(PersistentStorage):
    """gmqtt's store of unacknowledged publishes, extended with one future per message.

    gmqtt keeps the raw packet until PUBACK and replays it after a reconnect whose
    session survived. If the session did not survive it discards the packets (without
    freeing their packet ids); we free the ids and keep the messages so the transport
    can publish them again instead of losing them.
    """

    def __init__(self, on_acknowledged: Callable[[], None]) -> None:
        super().__init__()
        self.pending: dict[int, tuple[Message, asyncio.Future[None]]] = {}
        self.orphans: list[tuple[Message, asyncio.Future[None]]] = []
        self.free_id: Callable[[int], None] = lambda mid: None
        self._on_acknowledged = on_acknowledged

    def remove_message_by_mid(self, mid: int) -> None:
        self.settle(mid, None)

    def settle(self, mid: int, refusal: Refused | None) -> None:
        """The broker answered publish `mid`: resolve its future, or fail it with the refusal."""
        super().remove_message_by_mid(mid)
        entry = self.pending.pop(mid, None)
        if entry and not entry[1].done():
            if refusal is None:
                entry[1].set_result(None)
            else:
                entry[1].set_exception(refusal)
        self._on_acknowledged()

    def clear(self) -> None:
        for mid in self.pending:
            self.free_id(mid)
        self.orphans.extend(self.pending.values())
        self.pending.clear()
        super().clear()


class _FastPathProtocol(MQTTProtocol):
    """gmqtt's protocol, with PUBLISH and PUBACK handled by the transport as soon as bytes arrive.

    gmqtt feeds the bytes to a StreamReader that a reading task drains (a task wake-up for
    every burst) and parses each packet in general form; here the two per-message packets
    go straight to `owner`, and every other packet to gmqtt's handler, in arrival order.
    """

    def __init__(self, *args: Any, owner: MqttTransport, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner
        self._unparsed = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        BaseMQTTProtocol.connection_made(self, transport)  # without MQTTProtocol's reading task

    def data_received(self, data: bytes) -> None:
        connection = self._connection
        if connection._handler.current_connection is not connection:
            return  # a connection already replaced by a reconnect, as gmqtt's put_package decides
        connection._last_data_in = time.monotonic()  # keep-alive
        try:
            packets, self._unparsed = split_packets(self._unparsed + data if self._unparsed else data)
            for first_byte, body in packets:
                kind = first_byte & PACKET_TYPE
                if kind == PUBLISH and first_byte & 0x06 != 0x04:  # QoS 0 or 1; QoS 2 is gmqtt's
                    self._owner._received_publish(*parse_publish(first_byte, body))
                elif kind == PUBACK:
                    self._owner._received_puback(*parse_puback(body))
                else:
                    connection.put_package(Package(first_byte, body))
        except MalformedPacket as exc:
            log.error("closing the connection: the broker sent %s", exc)
            self._transport.close()

    def eof_received(self) -> bool:
        return False  # the broker closed its side: close ours, as gmqtt's reading task does


class _Client(gmqtt.Client):
    """A gmqtt client whose connections use _FastPathProtocol for `owner`."""

    def __init__(self, *args: Any, owner: MqttTransport, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    async def _create_connection(self, host: str, port: int, ssl: Any, clean_session: bool,
                                 keepalive: int) -> MQTTConnection:
        # gmqtt 0.8.0's Client._create_connection, with our protocol in place of its own
        self._exit_reconnecting_state()
        self._package_handler.clear_topics_aliases()
        self._connack_received.clear()
        self._connection_lost.clear()
        protocol = partial(_FastPathProtocol, owner=self._owner, connection_state=self._connection_state,
                           id_generator=self._package_handler.id_generator)
        transport, protocol = await asyncio.get_running_loop().create_connection(protocol, host, port, ssl=ssl)
        return MQTTConnection(transport, protocol, clean_session, keepalive, package_handler=self._package_handler,
                              logger=self._logger)


class MqttTransport:
    """One MQTT 5 client: QoS 1, persistent session, reconnect with backoff, bounded inbound queue."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.stats = TransportStats()
        self._inbound = InboundQueue(config.queue_size, self.stats)
        self._store = _InflightStore(on_acknowledged=self._send_backlog)
        # QoS 1 publishes wait here while the broker's receive maximum of them is unacknowledged.
        self._backlog: deque[tuple[Message, asyncio.Future[None]]] = deque()
        self._send_window = MQTT_RECEIVE_MAXIMUM - 2
        self._connected = asyncio.Event()
        self._connection_count = 0  # a delivery from an earlier connection must not be acknowledged
        self._unacknowledged = 0  # QoS 1 deliveries received on this connection and not yet acknowledged
        self._acknowledged: asyncio.Future[None] | None = None  # receive() waiting for room
        # PUBLISH and PUBACK packets, written together once per event-loop turn: one system call
        # for a burst instead of one per message.
        self._outgoing = bytearray()
        self._subacks: dict[int, asyncio.Future[tuple[int, ...]]] = {}
        self._closing = False
        self._refusal: Refused | None = None  # the first publish the broker refused: receive() raises it
        self._planned_outage: float | None = None
        self._client = self._make_client()

    def _make_client(self) -> gmqtt.Client:
        config = self.config
        will = None
        if config.will is not None:
            will = gmqtt.Message(config.will.topic, config.will.payload, qos=config.will.qos, retain=config.will.retain)
        client = _Client(
            config.client_id,
            owner=self,
            clean_session=config.clean_start,
            optimistic_acknowledgement=False,
            will_message=will,
            persistent_storage=self._store,
            logger=logging.getLogger("gmqtt"),
            session_expiry_interval=config.session_expiry,
            receive_maximum=config.receive_maximum,
        )
        self._store.free_id = client._package_handler.id_generator.free_id
        if config.username:
            client.set_auth_credentials(config.username, config.password)
        client.set_config({"reconnect_retries": -1, "reconnect_delay": INITIAL_BACKOFF})
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_qos2_message
        client.on_subscribe = self._on_subscribe
        return client

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    async def __aenter__(self) -> Self:
        # kept: asyncio.get_running_loop() makes a getpid() system call each time
        self._loop = asyncio.get_running_loop()
        await self._connect_with_backoff()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing = True
        try:
            if self._connected.is_set():
                await self.flush(timeout=5.0)
                self._write_outgoing()
        finally:
            await self._client.disconnect()

    async def _connect_with_backoff(self) -> None:
        """Connect, retrying an unreachable broker; a refusal that can pass is retried by gmqtt itself."""
        delay = INITIAL_BACKOFF
        config = self.config
        while True:
            try:
                await self._client.connect(config.host, config.port, ssl=config.tls or False,
                                           keepalive=config.keepalive)
                return
            except MQTTConnectError as exc:
                if exc._code in PERMANENT_REFUSALS:
                    raise TransportError(
                        f"broker {config.host}:{config.port} refused client {config.client_id!r}: {exc}",
                        retryable=False,
                    ) from None
                log.warning("broker refused %r for now (%s); gmqtt retries", config.client_id, exc)
                await self._connected.wait()  # gmqtt's own reconnect loop is already running
                return
            except ssl.SSLError as exc:  # a certificate problem does not pass by waiting
                raise TransportError(f"TLS with broker {config.host}:{config.port} failed: {exc}",
                                     retryable=False) from None
            except OSError as exc:
                log.warning("broker %s:%s not reachable (%s); retrying in %.1fs",
                            config.host, config.port, exc.strerror or exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    def _on_connect(self, client: gmqtt.Client, session_present: int, result: int, properties: Any) -> None:
        client.reconnect_delay = INITIAL_BACKOFF
        # `properties` merges CONNACK's with our CONNECT's (ours win); the broker's own limit is
        # in CONNACK alone, which gmqtt keeps here (its session_expiry_interval reads it too).
        connack = client._package_handler._connack_properties
        self._send_window = max(1, connack.get("receive_maximum", [MQTT_RECEIVE_MAXIMUM])[0] - 2)
        if self._connection_count:
            self.stats.reconnects += 1
            log.info("reconnected to broker (session %s)", "kept" if session_present else "new")
        # The broker sends again whatever was not acknowledged on the old connection (MQTT 5, 4.4),
        # so an acknowledgement due from then could only hit a packet id it has reused: drop them.
        self._connection_count += 1
        self._unacknowledged = 0
        # Mosquitto 2.0.11 restores a session from its persistence file without its shared
        # subscriptions (tests/transport/test_mqtt.py shows it), so those are always
        # made again; a shared subscription has no retained messages and is not duplicated.
        for subscription in client.subscriptions:
            if not session_present or subscription.topic.startswith("$share/"):
                client.resubscribe(subscription)
        self._connected.set()
        orphans, self._store.orphans = self._store.orphans, []
        self._backlog.extendleft(reversed(orphans))
        self._send_backlog()
        if self.config.birth is not None:
            self.publish(self.config.birth)

    def _on_disconnect(self, client: gmqtt.Client, packet: Any, exc: Any = None) -> None:
        self._connected.clear()
        if self._closing:
            return
        if self._planned_outage is not None:
            client.reconnect_delay, self._planned_outage = self._planned_outage, None
            return
        client.reconnect_delay = min(max(client.reconnect_delay, INITIAL_BACKOFF) * 2, MAX_BACKOFF)
        log.warning("lost the broker connection; reconnecting in %.1fs", client.reconnect_delay)

    def _received_publish(self, message: Message, mid: int | None) -> None:
        """A QoS 0 or 1 delivery; QoS 1 is acknowledged when the consumer says so, in one write
        per loop turn with everything else."""
        if mid is None:
            self._inbound.offer(Delivery(message))
            return
        connection = self._connection_count
        self._unacknowledged += 1
        self._inbound.offer(Delivery(message, lambda: self._acknowledge(mid, connection)))

    def _received_puback(self, mid: int, reason: int) -> None:
        """The broker answered one of our publishes: free its packet id and settle its future."""
        self._client._package_handler.id_generator.free_id(mid)
        if reason < FIRST_REFUSAL:
            self._store.remove_message_by_mid(mid)
            return
        entry = self._store.pending.get(mid)
        refusal = refused_publish(entry[0].topic if entry else f"packet {mid}", reason, self.stats)
        self._refusal = self._refusal or refusal
        self._store.settle(mid, refusal)

    def _on_qos2_message(self, client: gmqtt.Client, topic: str | bytes, payload: bytes, qos: int,
                         properties: dict) -> int:
        """Only if a broker sends QoS 2 though every subscription asks for at most 1; gmqtt acknowledges."""
        if isinstance(topic, bytes):
            topic = topic.decode("utf-8", errors="replace")
        self._inbound.offer(Delivery(Message(topic, payload, qos, bool(properties.get("retain")))))
        return SUCCESS

    def _acknowledge(self, mid: int, connection: int) -> None:
        if connection != self._connection_count:
            log.debug("not acknowledging a delivery from an earlier connection; the broker sends it again")
            return
        self._unacknowledged -= 1
        if self._acknowledged is not None and not self._acknowledged.done():
            self._acknowledged.set_result(None)
        self._write_soon(puback_packet(mid))

    def _write_soon(self, packet: bytes) -> None:
        if not self._outgoing:
            self._loop.call_soon(self._write_outgoing)
        self._outgoing += packet

    def _write_outgoing(self) -> None:
        """Write what was queued in this loop turn; without a connection it is dropped, because
        unacknowledged publishes are kept in the store and sent again after the reconnect."""
        data, self._outgoing = bytes(self._outgoing), bytearray()
        connection = self._client._connection
        if data and connection is not None and self._connected.is_set():
            connection._protocol.write_data(data)

    def _on_subscribe(self, client: gmqtt.Client, mid: int, granted: tuple[int, ...], properties: Any) -> None:
        future = self._subacks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(granted)

    async def subscribe(self, *filters: str, qos: int = 1, retained: str = "always") -> None:
        """Subscribe and wait for the broker's answer; a refused filter raises TransportError.

        `retained="new"` asks for retained messages only when the subscription is new to the
        session (MQTT 5 retain handling 1), so a restart does not replay them as fresh facts.
        """
        retain_handling = {"always": 0, "new": 1}[retained]
        for topic_filter in filters:
            mid = self._client.subscribe(topic_filter, qos=qos, retain_handling_options=retain_handling)
            future: asyncio.Future[tuple[int, ...]] = asyncio.get_running_loop().create_future()
            self._subacks[mid] = future
            try:
                granted = await asyncio.wait_for(future, SUBACK_TIMEOUT)
            except TimeoutError:
                raise TransportError(f"no answer to the subscription to {topic_filter}", topic=topic_filter) from None
            if granted[0] >= FIRST_REFUSAL:
                raise Refused(f"the broker refused the subscription to {topic_filter}: {reason_name(granted[0])}",
                              topic=topic_filter, reason_code=granted[0])

    def publish(self, message: Message) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self._loop.create_future()
        if message.qos > 0 and (self._backlog or len(self._store.pending) >= self._send_window):
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
        while self._backlog and len(self._store.pending) < self._send_window:
            self._send(*self._backlog.popleft())

    def _send(self, message: Message, future: asyncio.Future[None]) -> None:
        mid = self._client._package_handler.id_generator.next_id() if message.qos else None
        try:
            packet = publish_packet(message, mid)
        except ValueError as exc:
            if mid is not None:
                self._client._package_handler.id_generator.free_id(mid)
            self.stats.publish_failures += 1
            future.set_exception(TransportError(f"publish to {message.topic[:128]} failed: {exc}", topic=message.topic))
            return
        self._write_soon(packet)
        self.stats.published += 1
        if mid is None:
            future.set_result(None)
        else:  # kept until PUBACK: gmqtt sends it again after a reconnect that kept the session
            self._store.push_message(mid, resent(packet))
            self._store.pending[mid] = (message, future)

    def admit_with(self, admit: Callable[[Message], bool]) -> None:
        self._inbound.admit = admit

    def drop_connection(self, offline_for: float) -> None:
        # The reconnect gmqtt schedules reads its delay only when it runs, after _on_disconnect.
        self._planned_outage = offline_for
        self._client._connection._transport.abort()

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

    def _in_hand(self) -> int:
        return self._unacknowledged - len(self._inbound)  # received minus still queued

    async def flush(self, timeout: float) -> bool:
        futures = [future for _, future in self._store.pending.values()]
        futures += [future for _, future in (*self._store.orphans, *self._backlog)]
        if not futures:
            return True
        done, _ = await asyncio.wait(futures, timeout=timeout)
        return len(done) == len(futures)
