"""The ingest service: device topics in, canonical facts out.

Telemetry becomes `reading.v1` (sensors) or `actuator.changed.v1` (actuators), placed
in its site and room when the fleet registry knows the device; status becomes `device.online.v1` / `device.offline.v1`,
and anything invalid becomes `event.rejected.v1` naming the reason. A delivery is
acknowledged only after the broker has acknowledged the facts made from it.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter

from ..errors import InvalidInput
from ..events import (
    ActuatorChangedV1,
    DeviceOfflineV1,
    DeviceOnlineV1,
    DeviceThrottledV1,
    Event,
    EventData,
    EventRejectedV1,
    ReadingV1,
    derived_event_id,
    new_event,
    utc_now,
)
from ..fleet import Registry
from ..manifest import ServiceSpec
from ..rejection import UNKNOWN_SUBJECT, Rejections
from ..sequence import SequenceTracker
from ..service import consume, publish_events
from ..settings import IngestSettings
from ..topics import STATUS_FILTER, TELEMETRY_FILTER, device_id_from_topic
from ..transport import Delivery, Message, Transport
from . import simjson
from .admission import Admission, Budgets, native_device_key

log = logging.getLogger(__name__)

SOURCE = "gateway/ingest"
THROTTLE_CHECK_EVERY = 0.5  # seconds between looks at the throttled devices' life cycle
STATUS_FACTS: dict[bytes, type[EventData]] = {b"online": DeviceOnlineV1, b"offline": DeviceOfflineV1}


class Ingest:
    """Turns one device message into the facts it stands for (no I/O)."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or Registry(None)
        self.counts: Counter[str] = Counter()
        self._sequence = 0
        self.rejections = Rejections(SOURCE, self.counts, self._next_sequence)
        self.device_sequences = SequenceTracker(self.counts)  # each device's `seq`

    def facts(self, message: Message) -> list[Event]:
        try:
            device_id = device_id_from_topic(message.topic)
            kind = message.topic.rsplit("/", 1)[1]
            if kind == "telemetry":
                if message.retain:
                    self.counts["ignored_retained"] += 1
                    return []
                return [self._telemetry(device_id, message.topic, message.payload)]
            return self._status(device_id, message.payload)
        except InvalidInput as exc:
            return [self._rejected(message, exc.message)]
        except Exception as exc:  # a bug must cost one message, not the service
            log.exception("ingest failed on a message on %s", message.topic[:128])
            return [self._rejected(message, f"internal error: {type(exc).__name__}: {exc}")]

    def _telemetry(self, device_id: str, topic: str, payload: bytes) -> Event:
        received = utc_now()
        decoded = simjson.decode(payload, received)
        self.counts[decoded.data.event_type] += 1
        self.device_sequences.is_new(device_id, decoded.sequence)  # counts gaps, repeats and late ones
        location = self.registry.describe(device_id)
        data = decoded.data.model_copy(update=location) if location else decoded.data
        time = decoded.time or received
        # Without a device clock a redelivery cannot be recognised; with one, it maps to the same id.
        event_id = derived_event_id(time, topic.encode() + b"\0" + payload) if decoded.time else None
        return new_event(data, source=f"device/{device_id}", subject=device_id, time=time,
                         sequence=decoded.sequence, caused_by=decoded.caused_by, event_id=event_id)

    def _status(self, device_id: str, payload: bytes) -> list[Event]:
        if not payload:
            return []  # a cleared retained status is not a fact
        fact = STATUS_FACTS.get(payload.strip().lower())
        if fact is None:
            raise InvalidInput(f"status must be 'online' or 'offline', got {payload[:32]!r}", device_id=device_id)
        self.counts["status"] += 1
        return [new_event(fact(), source=SOURCE, subject=device_id, sequence=self._next_sequence())]

    def _rejected(self, message: Message, reason: str) -> Event:
        try:
            subject = device_id_from_topic(message.topic)
        except InvalidInput:
            subject = UNKNOWN_SUBJECT
        return self.rejections.of(message, reason, subject)

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence


SPEC = ServiceSpec(
    name="ingest",
    reads=(TELEMETRY_FILTER, STATUS_FILTER),
    consumes=(),
    emits=(ReadingV1.event_type, ActuatorChangedV1.event_type, DeviceOnlineV1.event_type,
           DeviceOfflineV1.event_type, EventRejectedV1.event_type, DeviceThrottledV1.event_type),
)


class IngestService:
    """Consumes the subscribed device topics; acknowledges each delivery once its facts are acknowledged."""

    spec = SPEC

    def __init__(self, transport: Transport, registry: Registry | None = None, budgets: Budgets | None = None) -> None:
        self.transport = transport
        self.ingest = Ingest(registry)
        self.counts = self.ingest.counts
        self.admission = Admission(budgets or Budgets(IngestSettings()), self.counts, self.ingest._next_sequence,
                                   describe=self.ingest.registry.describe)
        self.device_key = native_device_key  # topic -> the device it belongs to, by string operations only

    async def run(self, stop: asyncio.Event) -> None:
        reporting = asyncio.create_task(self._report_throttled(stop))
        try:
            await consume(self.transport, stop, self.process)
        finally:
            reporting.cancel()
            publish_events(self.transport, self.admission.reports())

    async def _report_throttled(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(THROTTLE_CHECK_EVERY)
            publish_events(self.transport, self.admission.reports())

    def process(self, delivery: Delivery) -> None:
        if not self.admission.admits(self.device_key(delivery.message.topic)):
            delivery.ack()  # shed: before any decoding; acknowledged, so the broker does not send it again
            return
        facts = self.ingest.facts(delivery.message)
        delivery.ack_when(publish_events(self.transport, facts))
