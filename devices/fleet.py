"""The fleet runner: every simulated device is its own MQTT client with its own credentials.

Each device announces itself with a retained `online` on `devices/{id}/status` at every
(re)connect, leaves a retained `offline` as its last will, publishes telemetry at its
interval with jitter, and (actuators) acts on requests addressed to it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TextIO

from gateway.credentials import device_password
from gateway.errors import ConfigError, InvalidInput
from gateway.events import ActuationRequestedV1, decode_event, utc_now
from gateway.fleet import Fleet
from gateway.settings import Settings
from gateway.topics import event_topic, status_topic, telemetry_topic
from gateway.transport import ClientConfig, Message, MqttTransport, Transport

from .base import SimulatedDevice
from .faults import FaultInjector
from .kinds import KINDS
from .status import FleetStatus

log = logging.getLogger(__name__)

ONLINE = b"online"
OFFLINE = b"offline"
CONNECT_CONCURRENCY = 100


@dataclass
class Member:
    """One device of the running fleet: its simulation, faults, schedule and (once connected) transport."""

    device: SimulatedDevice
    faults: FaultInjector
    schedule: random.Random
    due: float = 0.0  # seconds after the fleet started
    _transport: Transport | None = field(default=None, init=False, repr=False)

    @property
    def transport(self) -> Transport:
        """Its own MQTT client, which a FleetRunner attaches before connecting; a bare simulation has none."""
        if self._transport is None:
            raise RuntimeError(f"device {self.device.id} has no transport outside a FleetRunner")
        return self._transport

    def attach(self, transport: Transport) -> None:
        self._transport = transport


class SimulatedFleet:
    """The part without I/O: the same fleet file and seed give the same devices and messages."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        rng = random.Random(fleet.seed)
        self.members = []
        for spec in fleet.devices():
            device_rng, fault_rng, schedule_rng = (random.Random(rng.getrandbits(64)) for _ in range(3))
            device = KINDS[spec.kind](spec, device_rng, fleet.day_length)
            member = Member(device, FaultInjector(spec.faults, fault_rng), schedule_rng)
            member.due = schedule_rng.uniform(0, spec.interval)  # spread the fleet's first readings
            self.members.append(member)

    def telemetry(self, member: Member) -> list[bytes]:
        """The payloads a sensor publishes at its due time, faults included; advances its schedule."""
        fields = member.faults.sample(member.device.sample(member.due))
        now = utc_now() + timedelta(seconds=member.faults.skew_seconds)
        payloads = member.faults.payloads(member.device.telemetry(fields, now))
        jitter = self.fleet.jitter
        member.due += member.device.spec.interval * (1 + member.schedule.uniform(-jitter, jitter))
        return payloads


def device_client_config(settings: Settings, device_id: str) -> ClientConfig:
    if settings.devices.secret is None:
        raise ConfigError("CHOREO_DEVICES_SECRET is not set: devices derive their broker passwords from it")
    password = device_password(settings.devices.secret.get_secret_value(), device_id)
    status = status_topic(device_id)
    return ClientConfig.from_settings(
        settings.mqtt, device_id, client_id=device_id, username=device_id, password=password, queue_size=100,
        will=Message(status, OFFLINE, retain=True), birth=Message(status, ONLINE, retain=True),
    )


class FleetRunner:
    def __init__(self, fleet: Fleet, settings: Settings,
                 transport_factory: Callable[[ClientConfig], Transport] = MqttTransport,
                 status_stream: TextIO = sys.stderr) -> None:
        self.simulation = SimulatedFleet(fleet)
        self.members = self.simulation.members
        configs = [device_client_config(settings, m.device.id) for m in self.members]  # fail before connecting
        for member, config in zip(self.members, configs, strict=True):
            member.attach(transport_factory(config))
        self.counts: Counter[str] = Counter()
        self.status = FleetStatus(status_stream)

    async def run(self, stop: asyncio.Event) -> None:
        log.info("connecting %d devices", len(self.members))
        await self._connect_all()
        started = time.monotonic()
        tasks = [asyncio.create_task(self._report_status(stop, started))]
        tasks += [asyncio.create_task(self._actuate(m, stop)) for m in self.members if m.device.is_actuator]
        try:
            await self._publish_on_schedule(stop, started)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._disconnect_all()
            self.status.summary(self.snapshot(), time.monotonic() - started)

    async def _connect_all(self) -> None:
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def connect(member: Member) -> None:
            async with limit:
                await member.transport.__aenter__()
            if member.device.is_actuator:
                await member.transport.subscribe(event_topic(ActuationRequestedV1.event_type, member.device.id))
                self._send(member, [self._encode(member.device.telemetry(member.device.state(), utc_now()))])

        await asyncio.gather(*(connect(m) for m in self.members))

    async def _disconnect_all(self) -> None:
        async def disconnect(member: Member) -> None:
            if member.transport.is_connected:
                member.transport.publish(Message(status_topic(member.device.id), OFFLINE, retain=True))
            await member.transport.__aexit__(None, None, None)

        await asyncio.gather(*(disconnect(m) for m in self.members), return_exceptions=True)

    async def _publish_on_schedule(self, stop: asyncio.Event, started: float) -> None:
        sensors = [m for m in self.members if not m.device.is_actuator]
        while not stop.is_set() and sensors:
            elapsed = time.monotonic() - started
            for member in sensors:
                if member.due <= elapsed:
                    self._tick(member)
            next_due = min(m.due for m in sensors)
            delay = max(0.0, next_due - (time.monotonic() - started))
            if delay:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)  # let the transports write between bursts
        if not sensors:
            await stop.wait()

    def _tick(self, member: Member) -> None:
        payloads = self.simulation.telemetry(member)
        if not member.transport.is_connected:
            self.counts["skipped_offline"] += 1
            return
        if member.faults.drops_out():
            member.transport.drop_connection(member.device.spec.faults.dropout_seconds)
            return
        self._send(member, payloads)

    def _send(self, member: Member, payloads: list[bytes]) -> None:
        topic = telemetry_topic(member.device.id)
        for payload in payloads:
            member.transport.publish(Message(topic, payload))
        self.counts["published"] += len(payloads)

    @staticmethod
    def _encode(payload: dict) -> bytes:
        return json.dumps(payload, separators=(",", ":")).encode()

    async def _actuate(self, member: Member, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delivery = await member.transport.receive(timeout=0.5)
            if delivery is None:
                continue
            try:
                fields = member.device.apply(decode_event(delivery.message.payload, topic=delivery.message.topic))
            except InvalidInput as exc:
                self.counts["bad_requests"] += 1
                log.warning("%s ignored a request: %s", member.device.id, exc.message)
                fields = None
            if fields:
                self.counts["actuations"] += 1
                self._send(member, [self._encode(member.device.telemetry(fields, utc_now()))])
            delivery.ack()

    def snapshot(self) -> dict:
        faults: Counter[str] = Counter()
        for member in self.members:
            faults.update(member.faults.counts)
        transports = [m.transport for m in self.members]
        return {
            "devices": len(self.members),
            "connected": sum(t.is_connected for t in transports),
            "published": self.counts["published"],
            "errors": sum(t.stats.publish_failures for t in transports) + self.counts["bad_requests"],
            "reconnects": sum(t.stats.reconnects for t in transports),
            "actuations": self.counts["actuations"],
            "faults": dict(faults),
        }

    async def _report_status(self, stop: asyncio.Event, started: float) -> None:
        while not stop.is_set():
            self.status.update(self.snapshot(), time.monotonic() - started)
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass


async def run_fleet(settings: Settings, fleet: Fleet, stop: asyncio.Event) -> None:
    await FleetRunner(fleet, settings).run(stop)
