"""The console's live state, from what the monitor account reads on the broker.

Retained manifests (`choreo/services/{name}[/{partition}]`) and counters (`.../counters`), schema
announcements (`choreo/schemas/#`), and the facts on `events/#`: each message is taken in order by
`take`, which never waits and never raises; what it cannot take is counted. `version` grows whenever
the map changes shape (a manifest, a schema, a new type or device group), so streams resend the map.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from typing import Any

from ..announced import AnnouncedSchemas
from ..choreography import ALL_TYPES, Choreography
from ..errors import InvalidInput
from ..events import decode_event
from ..manifest import OFFLINE, ONLINE, Manifest
from ..topics import ID_PATTERN, SERVICES_PREFIX, is_counters_topic
from ..transport import Message
from .recent import RecentFacts
from .stream import Clients
from .traffic import DeviceGroups, TypeRates

log = logging.getLogger(__name__)

EVENTS_PREFIX = "events/"
SCHEMAS_PREFIX = "choreo/schemas/"
MAX_SERVICES = 1000  # manifest topics, and counters topics, kept
MAX_COUNTERS = 256  # counters in one report
UNKNOWN_STATUS = "unknown"  # counters without a manifest
MAX_INTEGER = 2**63


class LiveState:
    def __init__(self, clients: Clients | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self.clients = clients or Clients()
        self.schemas = AnnouncedSchemas(counts=self.counts)
        self.recent = RecentFacts()
        self.rates = TypeRates(self.counts)
        self.devices = DeviceGroups(self.counts)
        self.manifests: dict[str, Manifest] = {}  # topic -> manifest
        self.reports: dict[str, dict[str, Any]] = {}  # topic -> counters report
        self.version = 0
        self.connected = False  # to the broker, subscribed: set by the feed

    # -- taking messages -------------------------------------------------------------------
    def take(self, message: Message) -> None:
        """Take one message of any subscribed topic."""
        topic = message.topic
        try:
            if topic.startswith(EVENTS_PREFIX):
                self._fact(message)
            elif topic.startswith(SCHEMAS_PREFIX):
                self._schema(message)
            elif is_counters_topic(topic):
                self._report(message)
            elif topic.startswith(SERVICES_PREFIX):
                self._manifest(message)
        except Exception:  # a bug must cost one message, not the console
            self.counts["failed"] += 1
            log.exception("the console failed on a message on %s", topic[:128])

    def _fact(self, message: Message) -> None:
        if message.retain:
            self.counts["ignored_retained"] += 1
            return
        try:
            event = decode_event(message.payload, topic=message.topic, announced=self.schemas)
        except InvalidInput:
            self.counts["undecodable"] += 1
            return
        self.counts["facts_received"] += 1
        if not self.recent.add(event):
            self.counts["duplicates"] += 1
            return
        new_type = self.rates.count(event.type, time.time())
        if self.devices.see(event) or new_type:
            self.version += 1
        self.clients.offer(event)

    def _schema(self, message: Message) -> None:
        try:
            self.schemas.offer(message)
        except InvalidInput:
            pass  # counted by the schemas, kept in their `refused`
        self.version += 1

    def _manifest(self, message: Message) -> None:
        if not message.payload:  # a cleared retained manifest: the service is gone
            if self.manifests.pop(message.topic, None) is not None:
                self.version += 1
            return
        try:
            manifest = Manifest.parse(message.payload)
        except ValueError:
            self.counts["bad_manifests"] += 1
            return
        if message.topic not in self.manifests and len(self.manifests) >= MAX_SERVICES:
            self.counts["services_untracked"] += 1
            return
        if self.manifests.get(message.topic) != manifest:
            self.manifests[message.topic] = manifest
            self.version += 1

    def _report(self, message: Message) -> None:
        if not message.payload:
            self.reports.pop(message.topic, None)
            return
        try:
            report = parse_report(message.payload)
        except ValueError:
            self.counts["bad_counters"] += 1
            return
        if message.topic not in self.reports and len(self.reports) >= MAX_SERVICES:
            self.counts["services_untracked"] += 1
            return
        self.reports[message.topic] = report

    # -- what the API shows ----------------------------------------------------------------------
    def map(self, now: float | None = None) -> dict[str, Any]:
        """The choreography: services, event types with their live rates, device groups, schema conflicts."""
        now = time.time() if now is None else now
        graph = Choreography.of(list(self.manifests.values()), self.schemas)
        types = sorted(set(graph.event_types) | set(self.rates.types()))
        return {
            "services": [service_row(manifest) for manifest in self._manifests_by_label()],
            "types": [{"type": event_type,
                       "producers": graph.producers.get(event_type, []),
                       "consumers": [*graph.consumers.get(event_type, []), *graph.stores_everything],
                       "upcast": {service: target for service, upcasts in graph.upcasts.items()
                                  for older, target in upcasts.items() if older == event_type},
                       "rate": self.rates.rate(event_type, now),
                       # an older version its consumers take only upcast, while the newer is produced, is no loose end
                       "unproduced": not graph.producers.get(event_type) and not graph.served_upcast(event_type),
                       "unconsumed": not graph.consumers.get(event_type)} for event_type in types],
            "devices": self.devices.groups(),
            "schema_conflicts": {event_type: list(services) for event_type, services in graph.conflicts.items()},
        }

    def services(self) -> list[dict[str, Any]]:
        """Each service (or partition, or replica) with its status and its latest counters."""
        rows: dict[str, dict[str, Any]] = {}
        for manifest in self._manifests_by_label():
            rows[manifest.spec.label] = {**service_row(manifest), "counters": {}, "updated": None}
        for report in self.reports.values():
            label = f"{report['name']}[{report['partition']}]" if report["partition"] else report["name"]
            row = rows.setdefault(label, {"name": report["name"], "label": label, "partition": report["partition"],
                                          "status": UNKNOWN_STATUS, "instance": report["instance"]})
            row.update(counters=report["counters"], updated=report["time"])
        return [rows[label] for label in sorted(rows)]

    def _manifests_by_label(self) -> list[Manifest]:
        return sorted(self.manifests.values(), key=lambda manifest: manifest.spec.label)


def service_row(manifest: Manifest) -> dict[str, Any]:
    spec = manifest.spec
    return {"name": spec.name, "label": spec.label, "partition": spec.partition,
            "status": ONLINE if manifest.online else OFFLINE,
            "consumes": list(spec.consumes), "emits": list(spec.emits), "instance": manifest.instance,
            "stores_everything": ALL_TYPES in spec.consumes}


def parse_report(payload: bytes) -> dict[str, Any]:
    """A counters report as `gateway/counters.py` writes it; ValueError for anything else."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not JSON") from None
    if not isinstance(document, dict) or not _is_id(document.get("name")):
        raise ValueError("not a counters report: its name must be a service name")
    partition = document.get("partition")
    if partition is not None and not _is_id(partition):
        raise ValueError("its partition must be null or an id")
    counters = document.get("counters")
    if not isinstance(counters, dict) or len(counters) > MAX_COUNTERS:
        raise ValueError(f"counters must be an object of at most {MAX_COUNTERS} numbers")
    if not all(isinstance(name, str) and len(name) <= 128 and _is_number(value) for name, value in counters.items()):
        raise ValueError("counters must map names to finite numbers")
    instance, moment = document.get("instance"), document.get("time")
    return {"name": document["name"], "partition": partition,
            "instance": instance[:128] if isinstance(instance, str) else "",
            "time": moment[:40] if isinstance(moment, str) else None, "counters": counters}


def _is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < MAX_INTEGER
    return isinstance(value, float) and math.isfinite(value)
