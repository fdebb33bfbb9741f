"""The fleet runner: every simulated device is its own MQTT client with its own credentials.

Each device announces itself with a retained `online` on `devices/{id}/status`, leaves
a retained `offline` as its last will, and publishes telemetry at its interval with jitter.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Callable

from gateway.credentials import device_password
from gateway.errors import ConfigError
from gateway.events import utc_now
from gateway.settings import Settings
from gateway.topics import status_topic, telemetry_topic
from gateway.transport import ClientConfig, Message, MqttTransport, Transport

from .temperature import TemperatureSensor

log = logging.getLogger(__name__)

ONLINE = b"online"
OFFLINE = b"offline"


def build_sensors(settings: Settings) -> list[TemperatureSensor]:
    """The fleet's sensors; the same seed gives the same fleet and the same readings."""
    devices = settings.devices
    rng = random.Random(devices.seed)
    sensors = []
    for index in range(devices.count):
        phase = 2 * math.pi * index / devices.count  # spread the cycles so the fleet is never in step
        device_rng = random.Random(rng.getrandbits(64))
        sensors.append(TemperatureSensor(f"{devices.prefix}-{index + 1}", device_rng, base=devices.base_temperature,
                                         swing=devices.swing, period=devices.period, phase=phase))
    return sensors


def device_client_config(settings: Settings, device_id: str) -> ClientConfig:
    if settings.devices.secret is None:
        raise ConfigError("CHOREO_DEVICES_SECRET is not set: devices derive their broker passwords from it")
    password = device_password(settings.devices.secret.get_secret_value(), device_id)
    return ClientConfig.from_settings(
        settings.mqtt, device_id, username=device_id, password=password,
        will=Message(status_topic(device_id), OFFLINE, qos=1, retain=True), queue_size=100,
    )


async def run_device(sensor: TemperatureSensor, transport: Transport, settings: Settings, stop: asyncio.Event,
                     started: float) -> None:
    interval = settings.devices.interval
    jitter = settings.devices.jitter
    async with transport:
        transport.publish(Message(status_topic(sensor.device_id), ONLINE, retain=True))
        topic = telemetry_topic(sensor.device_id)
        while not stop.is_set():
            payload = json.dumps(sensor.reading(time.monotonic() - started, utc_now())).encode()
            transport.publish(Message(topic, payload))
            delay = interval * (1 + sensor.rng.uniform(-jitter, jitter))
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
        transport.publish(Message(status_topic(sensor.device_id), OFFLINE, retain=True))


async def run_fleet(settings: Settings, stop: asyncio.Event,
                    transport_factory: Callable[[ClientConfig], Transport] = MqttTransport) -> int:
    """Run every device until `stop`; returns the number of telemetry messages published."""
    sensors = build_sensors(settings)
    transports = [transport_factory(device_client_config(settings, s.device_id)) for s in sensors]
    started = time.monotonic()
    log.info("starting %d devices", len(sensors))
    await asyncio.gather(*(run_device(s, t, settings, stop, started) for s, t in zip(sensors, transports)))
    return sum(s.sequence for s in sensors)
