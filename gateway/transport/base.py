"""The transport's own frozen types: what every MQTT implementation behind the seam speaks."""
from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, Self

from ..errors import ConfigError, Refused
from ..settings import MqttSettings
from .reasons import reason_name

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    user_properties: tuple[tuple[str, str], ...] = ()  # MQTT 5 user properties, in order, both directions


class Delivery:
    """An inbound message and the handle that acknowledges it to the broker.

    A QoS 1 delivery is acknowledged (PUBACK) only when `ack()` is called, or when
    every future passed to `ack_when()` has succeeded, so a crash before that
    point makes the broker deliver it again.
    """

    __slots__ = ("message", "_ack")

    def __init__(self, message: Message, ack: Callable[[], None] | None = None) -> None:
        self.message = message
        self._ack = ack  # sends the acknowledgement; None for QoS 0 or once sent

    def ack(self) -> None:
        ack, self._ack = self._ack, None
        if ack is not None:
            ack()

    def ack_when(self, futures: Iterable[asyncio.Future[None]]) -> None:
        """Acknowledge once all `futures` (usually publish confirmations) succeed."""
        pending = [f for f in futures if not (f.done() and not f.cancelled() and f.exception() is None)]
        if not pending:
            self.ack()
            return
        remaining = len(pending)

        def one_done(future: asyncio.Future[None]) -> None:
            nonlocal remaining
            if future.cancelled() or future.exception() is not None:
                log.error("not acknowledging %s: a fact made from it was not published (%s); "
                          "the broker delivers it again after a reconnect", self.message.topic,
                          "cancelled" if future.cancelled() else future.exception())
                return
            remaining -= 1
            if remaining == 0:
                self.ack()

        for future in pending:
            future.add_done_callback(one_done)


@dataclass(slots=True)
class TransportStats:
    received: int = 0
    dropped: int = 0  # QoS 0 deliveries that found the inbound queue full
    published: int = 0
    publish_failures: int = 0
    refused: int = 0  # publishes the broker answered with a failure reason code (e.g. not authorized)
    reconnects: int = 0  # connections made again after one was lost
    held_back: int = 0  # waits in receive(): the broker sent beyond our receive maximum

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def refused_publish(topic: str, reason_code: int, stats: TransportStats) -> Refused:
    """The error a publish fails with when the broker refuses it; logged and counted here."""
    stats.publish_failures += 1
    stats.refused += 1
    refusal = Refused(f"the broker refused the publish to {topic[:128]}: {reason_name(reason_code)}",
                      topic=topic, reason_code=reason_code)
    log.error("%s", refusal.message)
    return refusal


class InboundQueue:
    """Inbound deliveries in arrival order.

    QoS 0 deliveries beyond `limit` are dropped and counted. QoS 1 deliveries are never
    dropped: each stays unacknowledged until processed, and the broker sends at most
    the client's receive maximum of those, which bounds them.
    """

    def __init__(self, limit: int, stats: TransportStats) -> None:
        self.limit = limit
        self.stats = stats
        self._items: deque[Delivery] = deque()
        self._waiter: asyncio.Future[None] | None = None  # the consumer's, while the queue is empty
        self.admit: Callable[[Message], bool] | None = None  # Transport.admit_with

    def offer(self, delivery: Delivery) -> None:
        self.stats.received += 1
        if self.admit is not None and not self.admit(delivery.message):
            delivery.ack()  # refused by the consumer's admission, which counts it: never queued
            return
        if delivery.message.qos == 0 and len(self._items) >= self.limit:
            self.stats.dropped += 1
            return
        self._items.append(delivery)
        wake(self._waiter)

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, timeout: float | None) -> Delivery | None:
        """The next delivery, waiting at most `timeout` seconds (None: no limit, 0: no wait)."""
        if not self._items and timeout != 0:
            # A bare future and a timer: asyncio.wait_for would start a task for every wait.
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            timer = loop.call_later(timeout, wake, self._waiter) if timeout is not None else None
            try:
                await self._waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        return self._items.popleft() if self._items else None


def wake(waiter: asyncio.Future[None] | None) -> None:
    """Resolve `waiter`, if someone still waits on it."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """How one client connects: identity, credentials, session and flow-control limits."""

    client_id: str
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keepalive: int = 30
    clean_start: bool = False
    session_expiry: int = 3600
    queue_size: int = 10_000  # QoS 0 deliveries held before dropping
    receive_maximum: int = 1000
    tls: ssl.SSLContext | None = field(default=None, repr=False)  # None: plain MQTT
    will: Message | None = None  # published by the broker if the connection dies without a goodbye
    birth: Message | None = None  # published by the client on every (re)connect

    @classmethod
    def from_settings(cls, mqtt: MqttSettings, default_client_id: str, **overrides: object) -> ClientConfig:
        values: dict[str, object] = dict(
            client_id=mqtt.client_id or default_client_id,
            host=mqtt.host,
            port=mqtt.port,
            username=mqtt.username,
            password=mqtt.password.get_secret_value() if mqtt.password else None,
            keepalive=mqtt.keepalive,
            session_expiry=mqtt.session_expiry,
            queue_size=mqtt.queue_size,
            receive_maximum=mqtt.receive_maximum,
            tls=tls_context(mqtt),
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def tls_context(mqtt: MqttSettings) -> ssl.SSLContext | None:
    """TLS that verifies the broker against `tls_ca`, with a client certificate if one is set."""
    if not mqtt.tls_ca:
        return None
    try:
        context = ssl.create_default_context(cafile=mqtt.tls_ca)
        if mqtt.tls_cert:
            context.load_cert_chain(mqtt.tls_cert, mqtt.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"mqtt TLS files: {exc}") from None
    return context


class Transport(Protocol):
    """What services need from MQTT. Implementations: MqttTransport (client.py) and MemoryTransport."""

    stats: TransportStats

    @property
    def is_connected(self) -> bool: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def subscribe(self, *filters: str, qos: int = 1, retained: str = "always") -> None:
        """Subscribe once the broker agreed; restored after a reconnect that lost the session.

        `retained="new"`: retained messages only for a subscription new to the session.
        """

    def publish(self, message: Message) -> asyncio.Future[None]:
        """Send; the future resolves when the broker has acknowledged a QoS 1 message, and fails
        with Refused if the broker answered with a failure reason code."""

    async def receive(self, timeout: float | None = None) -> Delivery | None:
        """The next inbound message in arrival order, or None once `timeout` seconds pass.

        Raises Refused once the broker has refused any publish of this client: its declarations
        and the broker's ACL disagree, and a consumer that went on would drop the facts it makes.
        """

    async def gather(self, seconds: float) -> None:
        """Read nothing from the broker for `seconds`: what arrives meanwhile waits in the socket and
        is then read and handled in one wake-up, instead of one wake-up per message."""

    async def flush(self, timeout: float) -> bool:
        """Wait until every publish so far is acknowledged; False if `timeout` passed first."""

    def drop_connection(self, offline_for: float) -> None:
        """Cut the connection without a goodbye (the broker sends the will); reconnect after `offline_for` s."""

    def admit_with(self, admit: Callable[[Message], bool]) -> None:
        """Decide for each inbound message as it arrives, before it queues: one `admit` refuses is
        acknowledged and dropped there (the consumer counts it), so a flood from one source never
        stands in the queue in front of everyone else's (ingest's per-device admission)."""
