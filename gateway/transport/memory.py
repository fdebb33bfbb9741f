"""The in-memory twin of the MQTT transport, for fast unit tests of logic.

It keeps MQTT's observable rules that the services rely on: `+`/`#` wildcards,
retained messages delivered on subscribe, the last will on a crash, the same
inbound queue as the real transport (counted QoS 0 drops, QoS 1 never dropped), and
publishes refused as "not authorized" where the broker was told to deny them.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Self

from ..errors import Refused
from ..topics import matches
from .base import ClientConfig, Delivery, InboundQueue, Message, TransportStats, refused_publish

NOT_AUTHORIZED = 0x87


class MemoryBroker:
    """Routes messages between MemoryTransports in one event loop."""

    def __init__(self) -> None:
        self.clients: list[MemoryTransport] = []
        self.retained: dict[str, Message] = {}
        self.history: list[Message] = []  # every routed message, for assertions
        self.denied: list[tuple[str, str]] = []  # (client id, topic filter) it may not publish on

    def deny(self, client_id: str, topic_filter: str) -> None:
        """Refuse publishes of `client_id` on topics matching `topic_filter`, as an ACL would."""
        self.denied.append((client_id, topic_filter))

    def refuses(self, client_id: str, topic: str) -> bool:
        return any(client == client_id and matches(topic_filter, topic) for client, topic_filter in self.denied)

    def route(self, message: Message) -> None:
        self.history.append(message)
        if message.retain:
            if message.payload:
                self.retained[message.topic] = message
            else:
                self.retained.pop(message.topic, None)
        for client in list(self.clients):
            qos = client.granted_qos(message.topic)
            if qos is not None:
                client.offer(replace(message, qos=min(qos, message.qos), retain=False))

    def connect(self, client: MemoryTransport) -> None:
        self.clients.append(client)

    def disconnect(self, client: MemoryTransport, *, clean: bool) -> None:
        self.clients.remove(client)
        if not clean and client.config.will is not None:
            self.route(client.config.will)


class MemoryTransport:
    """A client of a MemoryBroker with the same interface as MqttTransport."""

    def __init__(self, broker: MemoryBroker, config: ClientConfig) -> None:
        self.broker = broker
        self.config = config
        self.stats = TransportStats()
        self._inbound = InboundQueue(config.queue_size, self.stats)
        self._filters: dict[str, int] = {}
        self._refusal: Refused | None = None

    @property
    def is_connected(self) -> bool:
        return self in self.broker.clients

    async def __aenter__(self) -> Self:
        self._connect()
        return self

    def _connect(self) -> None:
        self.broker.connect(self)
        if self.config.birth is not None:
            self.publish(self.config.birth)

    async def __aexit__(self, *exc_info: object) -> None:
        self.broker.disconnect(self, clean=True)

    def crash(self) -> None:
        """Vanish without a clean disconnect, so the broker publishes the last will."""
        self.broker.disconnect(self, clean=False)

    def admit_with(self, admit: Callable[[Message], bool]) -> None:
        self._inbound.admit = admit

    def drop_connection(self, offline_for: float) -> None:
        self.crash()
        asyncio.get_running_loop().call_later(offline_for, self._reconnect)

    def _reconnect(self) -> None:
        self.stats.reconnects += 1
        self._connect()

    def granted_qos(self, topic: str) -> int | None:
        granted = [qos for topic_filter, qos in self._filters.items() if matches(topic_filter, topic)]
        return max(granted) if granted else None

    def offer(self, message: Message) -> None:
        self._inbound.offer(Delivery(message))

    async def subscribe(self, *filters: str, qos: int = 1, retained: str = "always") -> None:
        for topic_filter in filters:
            known = topic_filter in self._filters
            self._filters[topic_filter] = qos
            if known and retained == "new":
                continue
            for message in list(self.broker.retained.values()):
                if matches(topic_filter, message.topic):
                    self.offer(replace(message, qos=min(qos, message.qos), retain=True))

    def publish(self, message: Message) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stats.published += 1
        if not self.broker.refuses(self.config.client_id, message.topic):
            self.broker.route(message)
        elif message.qos:
            refusal = refused_publish(message.topic, NOT_AUTHORIZED, self.stats)
            self._refusal = self._refusal or refusal
            future.set_exception(refusal)
            return future
        future.set_result(None)  # a denied QoS 0 publish vanishes: there is no PUBACK to say so
        return future

    async def receive(self, timeout: float | None = None) -> Delivery | None:
        if self._refusal is not None:
            raise self._refusal
        return await self._inbound.get(timeout)

    async def gather(self, seconds: float) -> None:
        await asyncio.sleep(seconds)  # deliveries meanwhile queue, as they would in the socket

    async def flush(self, timeout: float) -> bool:
        return True
