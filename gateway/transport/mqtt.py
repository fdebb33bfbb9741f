"""MQTT 5 transport on gmqtt, chosen by bench/mqtt_clients.py (see the README's figures)."""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Self

import gmqtt
from gmqtt.mqtt.handler import MQTTConnectError
from gmqtt.storage import PersistentStorage

from ..errors import TransportError
from .base import ClientConfig, Delivery, InboundQueue, Message, TransportStats

log = logging.getLogger(__name__)

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0
# CONNACK reason codes that no retry can fix (MQTT 3.1.1 and 5).
MQTT_RECEIVE_MAXIMUM = 65535  # what a CONNACK without a Receive Maximum means (MQTT 5, 3.2.2.3.3)
MAX_BACKLOG = 1_000_000
PERMANENT_REFUSALS = {1, 2, 4, 5, 132, 133, 134, 135, 138, 140}
SUCCESS = 0


class _InflightStore(PersistentStorage):
    """gmqtt's store of unacknowledged publishes, extended with one future per message.

    gmqtt keeps the raw packet until PUBACK and replays it after a reconnect whose
    session survived. If the session did not survive it discards the packets; we keep
    the messages so the transport can publish them again instead of losing them.
    """

    def __init__(self, on_acknowledged: Callable[[], None]) -> None:
        super().__init__()
        self.pending: dict[int, tuple[Message, asyncio.Future[None]]] = {}
        self.last_mid: int | None = None
        self.orphans: list[tuple[Message, asyncio.Future[None]]] = []
        self._on_acknowledged = on_acknowledged

    def push_message(self, mid: int, raw_package: bytes) -> None:
        super().push_message(mid, raw_package)
        self.last_mid = mid

    def remove_message_by_mid(self, mid: int) -> None:
        super().remove_message_by_mid(mid)
        entry = self.pending.pop(mid, None)
        if entry and not entry[1].done():
            entry[1].set_result(None)
        self._on_acknowledged()

    def clear(self) -> None:
        self.orphans.extend(self.pending.values())
        self.pending.clear()
        super().clear()


class MqttTransport:
    """One MQTT 5 client: QoS 1, persistent session, reconnect with backoff, bounded inbound queue."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.stats = TransportStats()
        self._inbound = InboundQueue(config.queue_size, self.stats)
        self._filters: dict[str, int] = {}
        self._store = _InflightStore(on_acknowledged=self._send_backlog)
        # QoS 1 publishes wait here while the broker's receive maximum of them is unacknowledged.
        self._backlog: deque[tuple[Message, asyncio.Future[None]]] = deque()
        self._send_window = MQTT_RECEIVE_MAXIMUM - 2
        self._connected = asyncio.Event()
        self._closing = False
        self._ever_connected = False
        self._awaiting_ack = 0
        self._planned_outage: float | None = None
        self._client = self._make_client()

    def _make_client(self) -> gmqtt.Client:
        config = self.config
        will = None
        if config.will is not None:
            will = gmqtt.Message(config.will.topic, config.will.payload, qos=config.will.qos, retain=config.will.retain)
        client = gmqtt.Client(
            config.client_id,
            clean_session=config.clean_start,
            optimistic_acknowledgement=False,
            will_message=will,
            persistent_storage=self._store,
            logger=logging.getLogger("gmqtt"),
            session_expiry_interval=config.session_expiry,
            receive_maximum=config.receive_maximum,
        )
        if config.username:
            client.set_auth_credentials(config.username, config.password)
        client.set_config({"reconnect_retries": -1, "reconnect_delay": INITIAL_BACKOFF})
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    async def __aenter__(self) -> Self:
        await self._connect_with_backoff()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing = True
        try:
            if self._connected.is_set():
                await self.flush(timeout=5.0)
                await self._send_given_acks()
        finally:
            await self._client.disconnect()

    async def _send_given_acks(self) -> None:
        """Let PUBACKs for deliveries acknowledged just now go out before disconnecting."""
        for _ in range(3):  # the handler returns, then gmqtt's done-callback sends the PUBACK
            await asyncio.sleep(0)

    async def _connect_with_backoff(self) -> None:
        delay = INITIAL_BACKOFF
        config = self.config
        while True:
            try:
                await self._client.connect(config.host, config.port, keepalive=config.keepalive)
                return
            except MQTTConnectError as exc:
                if exc._code in PERMANENT_REFUSALS:
                    raise TransportError(
                        f"broker {config.host}:{config.port} refused client {config.client_id!r}: {exc}",
                        retryable=False,
                    ) from None
                reason = str(exc)
            except OSError as exc:
                reason = exc.strerror or str(exc)
            log.warning("broker %s:%s not reachable (%s); retrying in %.1fs", config.host, config.port, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    def _on_connect(self, client: gmqtt.Client, session_present: int, result: int, properties: Any) -> None:
        client.reconnect_delay = INITIAL_BACKOFF
        # `properties` merges CONNACK's with our CONNECT's (ours win); the broker's own limit is
        # in CONNACK alone, which gmqtt keeps here (its session_expiry_interval reads it too).
        connack = client._package_handler._connack_properties
        broker_maximum = connack.get("receive_maximum", [MQTT_RECEIVE_MAXIMUM])[0]
        self._send_window = max(1, broker_maximum - 2)  # room for SUBSCRIBE packet ids
        if self._ever_connected:
            log.info("reconnected to broker (session %s)", "kept" if session_present else "new")
        self._ever_connected = True
        self._connected.set()
        if not session_present and self._filters:
            for topic_filter, qos in self._filters.items():
                client.subscribe(topic_filter, qos=qos)
        orphans, self._store.orphans = self._store.orphans, []
        self._backlog.extendleft(reversed(orphans))
        self._send_backlog()
        if self.config.birth is not None:
            self.publish(self.config.birth)

    def _on_disconnect(self, client: gmqtt.Client, packet: Any, exc: Any = None) -> None:
        self._connected.clear()
        if self._closing:
            return
        self.stats.reconnects += 1
        if self._planned_outage is not None:
            client.reconnect_delay, self._planned_outage = self._planned_outage, None
            return
        client.reconnect_delay = min(max(client.reconnect_delay, INITIAL_BACKOFF) * 2, MAX_BACKOFF)
        log.warning("lost the broker connection; reconnecting in %.1fs", client.reconnect_delay)

    async def _on_message(self, client: gmqtt.Client, topic: str | bytes, payload: bytes, qos: int, properties: dict) -> int:
        if isinstance(topic, bytes):
            topic = topic.decode("utf-8", errors="replace")
        message = Message(topic, payload, qos, bool(properties.get("retain")))
        if qos == 0:
            self._inbound.offer(Delivery(message))
            return SUCCESS
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._awaiting_ack += 1
        try:
            self._inbound.offer(Delivery(message, ack))
            await ack  # gmqtt sends the PUBACK when this returns
        finally:
            self._awaiting_ack -= 1
        return SUCCESS

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    def drop_connection(self, offline_for: float) -> None:
        # The reconnect gmqtt schedules reads its delay only when it runs, after _on_disconnect.
        self._planned_outage = offline_for
        self._client._connection._transport.abort()

    async def subscribe(self, *filters: str, qos: int = 1) -> None:
        for topic_filter in filters:
            self._filters[topic_filter] = qos
            self._client.subscribe(topic_filter, qos=qos)

    def publish(self, message: Message) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
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
        try:
            self._client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
        except Exception as exc:  # gmqtt raises on oversized payloads and closed sockets alike
            self.stats.publish_failures += 1
            future.set_exception(TransportError(f"publish to {message.topic} failed: {exc}", topic=message.topic))
            return
        self.stats.published += 1
        if message.qos == 0:
            future.set_result(None)
        else:
            self._store.pending[self._store.last_mid] = (message, future)

    async def receive(self, timeout: float | None = None) -> Delivery | None:
        return await self._inbound.get(timeout)

    async def flush(self, timeout: float) -> bool:
        futures = [future for _, future in self._store.pending.values()]
        futures += [future for _, future in (*self._store.orphans, *self._backlog)]
        if not futures:
            return True
        done, _ = await asyncio.wait(futures, timeout=timeout)
        return len(done) == len(futures)
