"""The console's intake: the read-only monitor account's subscription to the live topics.

QoS 0 into the transport's bounded queue: the console never holds the broker back, and what the
queue cannot take is dropped and counted (`dropped` in its transport stats, on `/metrics`). It
never publishes.
"""
from __future__ import annotations

import asyncio
import logging
import os

from ..choreography import MANIFESTS_FILTER
from ..settings import MqttSettings
from ..topics import EVENTS_FILTER, SCHEMAS_FILTER
from ..transport import ClientConfig, MqttTransport, TransportStats
from .live import LiveState

log = logging.getLogger(__name__)

FILTERS = (EVENTS_FILTER, MANIFESTS_FILTER, SCHEMAS_FILTER)


class Feed:
    """Subscribes and hands every message to the live state, in order, until stopped."""

    def __init__(self, mqtt: MqttSettings, live: LiveState) -> None:
        self.config = ClientConfig.from_settings(mqtt, f"console-{os.getpid()}", clean_start=True, session_expiry=0)
        self.live = live
        self.stats = TransportStats()

    @property
    def broker(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    async def run(self, stop: asyncio.Event) -> None:
        """Connect (retrying while the broker is unreachable), subscribe, take messages until `stop`.

        Raises TransportError when the broker refuses the account or a subscription."""
        transport = MqttTransport(self.config)
        self.stats = transport.stats
        try:
            async with transport:
                await transport.subscribe(*FILTERS, qos=0)
                log.info("console reading %s from %s as %s", ", ".join(FILTERS), self.broker, self.config.username)
                while not stop.is_set():
                    self.live.connected = transport.is_connected
                    delivery = await transport.receive(timeout=0.5)
                    if delivery is not None:
                        self.live.take(delivery.message)
        finally:
            self.live.connected = False
