"""The ingest service: device topics in, canonical facts out.

Each device convention (gateway/profiles/) says which topics to read and what a message means.
Readings become `reading.v1`, an actuator's reported state `actuator.changed.v1`, availability
`device.online.v1` / `device.offline.v1`, all placed in their site and room when the fleet registry
knows the device. A profile device the registry does not know becomes one `device.discovered.v1` and
nothing else; anything invalid becomes `event.rejected.v1` naming the reason. Ingest also reads the
`actuation.requested.v1` facts addressed to profile actuators, whose reports do not name the request
they answer (gateway/ingest/causation.py). A delivery is acknowledged only after the broker has
acknowledged the facts made from it.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import Counter
from datetime import datetime

from ..errors import InvalidInput
from ..events import (
    ActuationRequestedV1,
    ActuatorChangedV1,
    DeviceDiscoveredV1,
    DeviceOfflineV1,
    DeviceOnlineV1,
    DeviceThrottledV1,
    Event,
    EventData,
    EventRejectedV1,
    ReadingV1,
    decode_event,
    derived_event_id,
    new_event,
    utc_now,
)
from ..fleet import ACTUATOR_KINDS, Registry
from ..manifest import ServiceSpec
from ..profiles import PROFILES, Memory, Profile, Report, profile_of
from ..rejection import UNKNOWN_SUBJECT, Rejections
from ..sequence import SequenceTracker
from ..service import consume, publish_events
from ..settings import IngestSettings
from ..topics import ID_PATTERN, event_filter, matches, validate_id
from ..transport import Delivery, Message, Transport
from .admission import Admission, Budgets, TopicKeys
from .causation import PendingRequests
from .documents import KeptDocuments

log = logging.getLogger(__name__)

SOURCE = "gateway/ingest"
THROTTLE_CHECK_EVERY = 0.5  # seconds between looks at the throttled devices' life cycle
REQUESTS_PREFIX = f"events/{ActuationRequestedV1.event_type}/"
MAX_DISCOVERED = 10_000  # unknown devices reported once each; beyond, their messages are only counted


class Ingest:
    """Turns one device message into the facts it stands for; its only I/O is the documents it keeps on disk."""

    def __init__(self, registry: Registry | None = None, documents: KeptDocuments | None = None) -> None:
        self.registry = registry or Registry(None)
        self.counts: Counter[str] = Counter()
        self._sequence = 0
        self.rejections = Rejections(SOURCE, self.counts, self.next_sequence)
        self.device_sequences = SequenceTracker(self.counts)  # each native device's `seq`
        self.memories = {name: Memory(counts=self.counts, counter=f"forgotten:{name}") for name in PROFILES}
        self.pending = PendingRequests(self.counts)
        self.discovered: set[tuple[str, str]] = set()
        self.last_state: dict[str, tuple[str | None, float | None]] = {}  # per registry actuator
        # Homie's $description of each device, kept on disk to decode a backlog after a restart (documents.py)
        self.documents = documents
        if documents:
            self._recall_documents(documents)

    def _recall_documents(self, documents: KeptDocuments) -> None:
        """Let each profile learn again the documents kept before a restart (their facts were made then).
        One its profile now refuses is forgotten; a damaged file leaves ingest with what it could read."""
        now = utc_now()
        refused = []
        self.counts["documents_not_recalled"] += documents.damaged
        try:
            for topic, payload in documents:
                if self._recall(topic, payload, now):
                    self.counts["documents_recalled"] += 1
                else:
                    refused.append(topic)
        except sqlite3.Error as exc:
            self.counts["documents_not_recalled"] += 1
            log.error("could not read the documents kept in %s: %s; going on without the rest", documents.path, exc)
        for topic in refused:
            documents.keep(topic, b"")

    def _recall(self, topic: str, payload: bytes, now: datetime) -> bool:
        found = profile_of(topic)
        try:
            if found is not None:
                found[0].decode(topic, payload, now, self.memories[found[0].name])
                return True
            reason: object = "not a device topic of any profile"
        except Exception as exc:  # a profile grown stricter, or a bug: it costs this document, not the start
            reason = exc
        log.warning("forgot the document kept for %s: %s", topic[:128], reason)
        return False

    def device_key(self, topic: str) -> str | None:
        """The device a topic belongs to (its fleet id when the registry knows it), by string operations only."""
        found = profile_of(topic)
        if found is None:
            return None
        profile, native = found
        spec = self.registry.by_native(profile.name, native) if profile.name != "native" else None
        return spec.id if spec else native

    def facts(self, message: Message) -> list[Event]:
        try:
            if message.topic.startswith(REQUESTS_PREFIX):
                return self._request(message)
            found = profile_of(message.topic)
            if found is None:
                raise InvalidInput("not a device topic of any profile")
            return self._device_facts(found[0], message)
        except InvalidInput as exc:
            return [self._rejected(message, exc.message)]
        except Exception as exc:  # a bug must cost one message, not the service
            log.exception("ingest failed on a message on %s", message.topic[:128])
            return [self._rejected(message, f"internal error: {type(exc).__name__}: {exc}")]

    def _device_facts(self, profile: Profile, message: Message) -> list[Event]:
        received = utc_now()
        reports = profile.decode(message.topic, message.payload, received, self.memories[profile.name])
        if profile.documents and self.documents and is_document(profile.documents, message.topic):
            if not self.documents.keep(message.topic, message.payload):
                self.counts["documents_not_kept"] += 1
        facts: list[Event] = []
        for report in reports:
            facts += self._report_facts(profile, report, message, received)
        return facts

    def _report_facts(self, profile: Profile, report: Report, message: Message, received: datetime) -> list[Event]:
        speaks = report.speaks or profile.name  # Home Assistant discovery announces devices of other conventions
        if report.every_device:
            return [self._status(spec.id, report) for spec in self.registry.speaking(speaks)]
        if profile.name == "native":
            device_id = validate_id(report.native)
        else:
            spec = self.registry.by_native(speaks, report.native)
            if spec is None:
                return self._unknown(speaks, report, message)
            device_id = spec.id
        if report.announced is not None:
            self.counts["announced"] += 1
            return []
        if report.kept_out:
            self.counts["kept_out"] += len(report.kept_out)
        if report.online is not None:
            return [self._status(device_id, report)]
        if message.retain:  # a stale copy the broker kept, not something the device just said
            self.counts["ignored_retained"] += 1
            return []
        facts = []
        if report.measurements:
            data = ReadingV1(measurements=list(report.measurements), **self.registry.describe(device_id))
            facts.append(self._device_event(device_id, data, report, message, received, None))
        if report.state is not None or report.position is not None:
            facts += self._actuator(profile, device_id, report, message, received)
        if not facts and not report.kept_out:
            self.counts["empty_report"] += 1
        return facts

    def _status(self, device_id: str, report: Report) -> Event:
        self.counts["status"] += 1
        status: EventData = DeviceOnlineV1() if report.online else DeviceOfflineV1()
        return new_event(status, source=SOURCE, subject=device_id, sequence=self.next_sequence())

    def _actuator(self, profile: Profile, device_id: str, report: Report, message: Message,
                  received: datetime) -> list[Event]:
        spec = self.registry.get(device_id)
        if profile.name != "native" and (spec is None or spec.kind not in ACTUATOR_KINDS):
            self.counts["kept_out"] += 1  # a plug's relay state next to its power reading, say
            return []
        caused_by = report.caused_by
        if profile.name != "native":
            caused_by = self.pending.answered(device_id)
            state = (report.state, report.position)
            if caused_by is None and self.last_state.get(device_id) == state:
                self.counts["unchanged_state"] += 1  # Tasmota's STATE every TelePeriod, say
                return []
            self.last_state[device_id] = state
        data = ActuatorChangedV1(state=report.state, position=report.position, **self.registry.describe(device_id))
        return [self._device_event(device_id, data, report, message, received, caused_by)]

    def _device_event(self, device_id: str, data: EventData, report: Report, message: Message,
                      received: datetime, caused_by: tuple[str, str] | None) -> Event:
        self.counts[data.event_type] += 1
        if report.sequence is not None:
            self.device_sequences.is_new(device_id, report.sequence)  # counts gaps, repeats and late ones
        time = report.time or received
        # Without a device clock a redelivery cannot be recognised; with one, it maps to the same id.
        key = message.topic.encode() + b"\0" + message.payload + b"\0" + data.event_type.encode()
        event_id = derived_event_id(time, key) if report.time else None
        return new_event(data, source=f"device/{device_id}", subject=device_id, time=time,
                         sequence=report.sequence, caused_by=caused_by or report.caused_by, event_id=event_id)

    def _unknown(self, speaks: str, report: Report, message: Message) -> list[Event]:
        """A device the registry does not know: said once, then only counted."""
        self.counts["unknown_device"] += 1
        key = (speaks, report.native)
        if key in self.discovered:
            return []
        if len(self.discovered) >= MAX_DISCOVERED:
            self.counts["unknown_device_not_reported"] += 1
            return []
        self.discovered.add(key)
        self.counts[DeviceDiscoveredV1.event_type] += 1
        data = DeviceDiscoveredV1(profile=speaks, native=report.native[:256],
                                  announced=(report.announced or f"published on {message.topic}")[:512],
                                  topic=message.topic[:512])
        subject = report.native if ID_PATTERN.fullmatch(report.native) else UNKNOWN_SUBJECT
        return [new_event(data, source=SOURCE, subject=subject, sequence=self.next_sequence())]

    def _request(self, message: Message) -> list[Event]:
        """Remember a request addressed to a profile actuator, to name it as the cause of its next report."""
        try:
            request = decode_event(message.payload, topic=message.topic)
        except InvalidInput as exc:
            subject = message.topic[len(REQUESTS_PREFIX):]
            return [self.rejections.of(message, exc.message, subject if ID_PATTERN.fullmatch(subject)
                                       else UNKNOWN_SUBJECT)]
        spec = self.registry.get(request.subject)
        if spec is None or spec.profile == "native":
            self.counts["requests_not_ours"] += 1  # a native actuator names the request itself
            return []
        self.pending.remember(spec.id, request.id, request.correlationid)
        return []

    def _rejected(self, message: Message, reason: str) -> Event:
        subject = self.device_key(message.topic) or UNKNOWN_SUBJECT
        return self.rejections.of(message, reason, subject if ID_PATTERN.fullmatch(subject) else UNKNOWN_SUBJECT)

    def next_sequence(self) -> int:
        """The next number of ingest's own `sequence` (one counter for every fact it emits)."""
        self._sequence += 1
        return self._sequence


def is_document(documents: tuple[str, ...], topic: str) -> bool:
    """Whether `topic` matches one of the filters of `documents` (Homie's $description)."""
    return any(matches(document, topic) for document in documents)


def ingest_spec() -> ServiceSpec:
    """What ingest reads: every profile's device topics, and the requests addressed to actuators."""
    reads = [topic for profile in PROFILES.values() for topic in profile.subscriptions]
    return ServiceSpec(
        name="ingest",
        reads=(*reads, event_filter(ActuationRequestedV1.event_type)),
        documents=tuple(topic for profile in PROFILES.values() for topic in profile.documents),
        consumes=(ActuationRequestedV1.event_type,),
        emits=(ReadingV1.event_type, ActuatorChangedV1.event_type, DeviceOnlineV1.event_type,
               DeviceOfflineV1.event_type, EventRejectedV1.event_type, DeviceThrottledV1.event_type,
               DeviceDiscoveredV1.event_type),
    )


SPEC = ingest_spec()


class IngestService:
    """Consumes the subscribed device topics; acknowledges each delivery once its facts are acknowledged."""

    spec = SPEC

    def __init__(self, transport: Transport, registry: Registry | None = None, budgets: Budgets | None = None,
                 gather: float = 0.0, documents: KeptDocuments | None = None) -> None:
        self.transport = transport
        self.gather = gather
        self.ingest = Ingest(registry, documents)
        self.counts = self.ingest.counts
        self.admission = Admission(budgets or Budgets(IngestSettings()), self.counts, self.ingest.next_sequence,
                                   describe=self.ingest.registry.describe)
        self.device_key = TopicKeys(self.ingest.device_key)  # topic -> the device it belongs to
        # Decided as each message comes off the socket, before it queues: 10,000 queued flood messages
        # in front of the others' would delay them by as long as shedding those takes (docs/flow-control.md).
        transport.admit_with(self.admits)

    async def run(self, stop: asyncio.Event) -> None:
        reporting = asyncio.create_task(self._report_throttled(stop))
        try:
            await consume(self.transport, stop, self.process, self.gather)
        finally:
            reporting.cancel()
            publish_events(self.transport, self.admission.reports())

    async def _report_throttled(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(THROTTLE_CHECK_EVERY)
            publish_events(self.transport, self.admission.reports())

    def admits(self, message: Message) -> bool:
        """False sheds the message: the transport acknowledges and drops it before any decoding. A
        retained document (a Homie `$description`) is never shed: the broker sends it only when ingest
        subscribes, after a restart behind the backlog that spent its device's budget, and without it
        every later value of the device would be refused."""
        topic = message.topic
        if topic.startswith(REQUESTS_PREFIX) or (message.retain and is_document(self.spec.documents, topic)):
            return True
        return self.admission.admits(self.device_key(topic))

    def process(self, delivery: Delivery) -> None:
        facts = self.ingest.facts(delivery.message)
        delivery.ack_when(publish_events(self.transport, facts))
