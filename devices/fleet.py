"""The fleet runner: every simulated device connects with its own credentials.

A native device announces itself with a retained `online` on `devices/{id}/status` at every
(re)connect, leaves a retained `offline` as its last will, publishes telemetry at its
interval with jitter, and (actuators) acts on requests addressed to it. A profile device
(devices/profiles/) does the same in its convention's topics and payloads, and obeys the
native commands the bridge service publishes; Zigbee2MQTT devices share one bridge client.
A profile device's faults are those outside its payloads (stuck, clock skew, dropout).
"""
from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import TextIO

from gateway.errors import InvalidInput
from gateway.events import ActuationRequestedV1, decode_event, utc_now
from gateway.fleet import Fleet
from gateway.settings import Settings
from gateway.topics import event_topic, telemetry_topic
from gateway.transport import ClientConfig, Delivery, Message, MqttTransport, Transport

from .base import as_json
from .clients import Client, client_config, fleet_clients
from .commands import obey
from .faults import FaultInjector
from .kinds import KINDS
from .member import Member
from .profiles import speaker_for
from .status import FleetStatus

log = logging.getLogger(__name__)

CONNECT_CONCURRENCY = 100


class SimulatedFleet:
    """The part without I/O: the same fleet file and seed give the same devices and messages."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        rng = random.Random(fleet.seed)
        self.members = []
        for spec in fleet.devices():
            device_rng, fault_rng, schedule_rng = (random.Random(rng.getrandbits(64)) for _ in range(3))
            device = KINDS[spec.kind](spec, device_rng, fleet.day_length)
            member = Member(device, FaultInjector(spec.faults, fault_rng), schedule_rng, speaker_for(device))
            member.due = schedule_rng.uniform(0, spec.interval)  # spread the fleet's first readings
            self.members.append(member)

    def telemetry(self, member: Member) -> list[bytes]:
        """The payloads a sensor publishes at its due time, faults included; advances its schedule."""
        fields = member.faults.sample(member.device.sample(member.due))
        now = utc_now() + timedelta(seconds=member.faults.skew_seconds)
        payloads = member.faults.payloads(member.device.telemetry(fields, now))
        self._advance(member)
        return payloads

    def readings(self, member: Member) -> list[Message]:
        """What a profile sensor publishes at its due time, in its convention; advances its schedule."""
        assert member.speaker is not None
        fields = member.faults.sample(member.device.sample(member.due))
        now = utc_now() + timedelta(seconds=member.faults.skew_seconds)
        messages = member.speaker.readings(fields, now)
        self._advance(member)
        return messages

    def _advance(self, member: Member) -> None:
        jitter = self.fleet.jitter
        member.due += member.device.spec.interval * (1 + member.schedule.uniform(-jitter, jitter))


class FleetRunner:
    def __init__(self, fleet: Fleet, settings: Settings,
                 transport_factory: Callable[[ClientConfig], Transport] = MqttTransport,
                 status_stream: TextIO = sys.stderr) -> None:
        self.simulation = SimulatedFleet(fleet)
        self.members = self.simulation.members
        self.clients = fleet_clients(self.members)
        configs = [client_config(settings, client) for client in self.clients]  # fail before connecting
        self.transports = [transport_factory(config) for config in configs]
        for client, transport in zip(self.clients, self.transports, strict=True):
            for member in client.members:
                member.attach(transport)
        self.counts: Counter[str] = Counter()
        self.status = FleetStatus(status_stream)

    async def run(self, stop: asyncio.Event) -> None:
        log.info("connecting %d devices over %d clients", len(self.members), len(self.clients))
        await self._connect_all()
        started = time.monotonic()
        tasks = [asyncio.create_task(self._report_status(stop, started))]
        tasks += [asyncio.create_task(self._actuate(client, stop))
                  for client in self.clients if any(m.device.is_actuator for m in client.members)]
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

        async def connect(client: Client) -> None:
            async with limit:
                await client.transport.__aenter__()
            if client.profile == "native":
                await self._start_native(client.members[0])
            else:
                await self._start_profile(client)

        await asyncio.gather(*(connect(client) for client in self.clients))

    async def _start_native(self, member: Member) -> None:
        if member.device.is_actuator:
            await member.transport.subscribe(event_topic(ActuationRequestedV1.event_type, member.device.id))
            self._send(member, [as_json(member.device.telemetry(member.device.state(), utc_now()))])

    async def _start_profile(self, client: Client) -> None:
        """Subscribe to the native commands, then announce the devices and report the actuators' state."""
        commands = client.commands()
        if commands:
            await client.transport.subscribe(*commands)
        speakers = [m.speaker for m in client.members if m.speaker]
        messages = type(speakers[0]).client_announcements(speakers)
        for member in client.members:
            assert member.speaker is not None
            messages += member.speaker.announcements()
            if member.device.is_actuator:
                messages += member.speaker.state_report(member.device.state(), utc_now())
        self._publish(client.transport, messages)

    async def _disconnect_all(self) -> None:
        async def disconnect(client: Client) -> None:
            if client.transport.is_connected:
                self._publish(client.transport, client.goodbye(), count=False)
            await client.transport.__aexit__(None, None, None)

        await asyncio.gather(*(disconnect(client) for client in self.clients), return_exceptions=True)

    async def _publish_on_schedule(self, stop: asyncio.Event, started: float) -> None:
        sensors = [m for m in self.members
                   if not m.device.is_actuator or (m.speaker is not None and m.speaker.meters_actuators)]
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
        """A sensor's readings at its due time; a profile device takes only the faults outside its payloads."""
        if member.speaker is not None:
            messages = self.simulation.readings(member)
        else:
            topic = telemetry_topic(member.device.id)
            messages = [Message(topic, payload) for payload in self.simulation.telemetry(member)]
        if not member.transport.is_connected:
            self.counts["skipped_offline"] += 1
        elif member.faults.drops_out():  # for Zigbee2MQTT, the bridge: all its devices with it
            member.transport.drop_connection(member.device.spec.faults.dropout_seconds)
        else:
            self._publish(member.transport, messages)

    def _send(self, member: Member, payloads: list[bytes]) -> None:
        topic = telemetry_topic(member.device.id)
        for payload in payloads:
            member.transport.publish(Message(topic, payload))
        self.counts["published"] += len(payloads)

    def _publish(self, transport: Transport, messages: list[Message], count: bool = True) -> None:
        for message in messages:
            transport.publish(message)
        if count:
            self.counts["published"] += len(messages)

    async def _actuate(self, client: Client, stop: asyncio.Event) -> None:
        transport = client.transport
        commands = client.commands()
        while not stop.is_set():
            delivery = await transport.receive(timeout=0.5)
            if delivery is None:
                continue
            if client.profile == "native":
                self._request(client.members[0], delivery)
            elif (member := commands.get(delivery.message.topic)) is not None:
                self._publish(transport, obey(member, delivery.message, self.counts))
            else:
                self.counts["bad_requests"] += 1
                log.warning("%s heard a message on %s it did not subscribe to", client.account,
                            delivery.message.topic)
            delivery.ack()

    def _request(self, member: Member, delivery: Delivery) -> None:
        """A native actuator acts on an actuation request addressed to it and reports, naming the request."""
        try:
            fields = member.device.apply(decode_event(delivery.message.payload, topic=delivery.message.topic))
        except InvalidInput as exc:
            self.counts["bad_requests"] += 1
            log.warning("%s ignored a request: %s", member.device.id, exc.message)
            fields = None
        if fields:
            self.counts["actuations"] += 1
            self._send(member, [as_json(member.device.telemetry(fields, utc_now()))])

    def snapshot(self) -> dict:
        faults: Counter[str] = Counter()
        for member in self.members:
            faults.update(member.faults.counts)
        transports = self.transports
        return {
            "devices": len(self.members),
            "connected": sum(m.transport.is_connected for m in self.members),
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
