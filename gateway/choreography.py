"""The live choreography, drawn from the retained service manifests on `choreo/services/#`.

Who produces and who consumes each event type and version, as text or as a Mermaid flowchart,
with the loose ends flagged: types nobody produces, and types only stored. A consumer that
receives an older version upcast (gateway/upcast.py) is marked `(as v2)` on that edge, and a
version that is left behind is named: consumers waiting for a version nobody produces any more,
producers still emitting a version whose consumers have all moved on. With the
schemas announced on `choreo/schemas/#`, it also names the types known only from an
announcement, the types announced with conflicting schemas, and refused announcements.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from .announced import AnnouncedSchemas
from .errors import InvalidInput, Refused
from .events import EVENT_TYPES
from .manifest import Manifest
from .topics import SCHEMAS_FILTER, is_counters_topic
from .transport import Message, Transport

log = logging.getLogger(__name__)

ALL_TYPES = "*"  # the sink's manifest: it consumes every type
MANIFESTS_FILTER = "choreo/services/#"


async def collect_manifests(transport: Transport, quiet: float = 0.5, timeout: float = 5.0,
                            schemas: AnnouncedSchemas | None = None) -> list[Manifest]:
    """Subscribe to the retained manifests and read them until none has come for `quiet` seconds;
    with `schemas`, take the retained schema announcements into it too."""
    await transport.subscribe(MANIFESTS_FILTER, qos=1)
    if schemas is not None:
        await _subscribe_schemas(transport)
    manifests: dict[str, Manifest] = {}
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        delivery = await transport.receive(timeout=quiet)
        if delivery is None:
            break
        delivery.ack()
        message = delivery.message
        if message.topic.startswith("choreo/schemas/"):
            if schemas is not None:
                _take(schemas, message)
            continue
        if is_counters_topic(message.topic):
            continue  # a service's counters, published below its manifest
        try:
            manifest = Manifest.parse(message.payload)
        except ValueError:
            continue  # not a manifest: ignore it, it names nobody
        manifests[message.topic] = manifest
    return sorted(manifests.values(), key=lambda m: m.spec.label)


async def _subscribe_schemas(transport: Transport) -> None:
    try:
        await transport.subscribe(SCHEMAS_FILTER, qos=1)
    except Refused as exc:  # an account without the grant still gets the map of the manifests
        log.warning("%s: drawing without the announced schemas", exc.message)


def _take(schemas: AnnouncedSchemas, message: Message) -> None:
    try:
        schemas.offer(message)
    except InvalidInput:
        pass  # kept in schemas.refused, reported with the map


@dataclass
class Choreography:
    producers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    consumers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    offline: list[str] = field(default_factory=list)
    stores_everything: list[str] = field(default_factory=list)
    announced_only: list[str] = field(default_factory=list)  # types known from an announced schema, not in code
    conflicts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # type -> services announcing differently
    refused: dict[str, str] = field(default_factory=dict)  # announcement topic -> why it was refused
    upcasts: dict[str, dict[str, str]] = field(default_factory=dict)  # service -> older type -> type it handles

    @classmethod
    def of(cls, manifests: list[Manifest], schemas: AnnouncedSchemas | None = None) -> Choreography:
        graph = cls()
        if schemas is not None:
            graph.announced_only = [t for t in schemas.types() if t not in EVENT_TYPES]
            graph.conflicts = schemas.conflicts
            graph.refused = dict(schemas.refused)
        for manifest in manifests:
            service = manifest.spec.label
            if not manifest.online:
                graph.offline.append(service)
            if manifest.spec.upcasts:
                graph.upcasts[service] = dict(manifest.spec.upcasts)
            for event_type in manifest.spec.emits:
                graph.producers[event_type].append(service)
            for event_type in manifest.spec.consumes:
                if event_type == ALL_TYPES:
                    graph.stores_everything.append(service)
                else:
                    graph.consumers[event_type].append(service)
        return graph

    @property
    def event_types(self) -> list[str]:
        return sorted({*self.producers, *self.consumers})

    def unproduced(self) -> list[str]:
        """Consumed but produced by nobody; an older version its consumers only take upcast does not count
        while the version they handle is produced."""
        return [t for t in self.event_types if not self.producers.get(t) and not self.served_upcast(t)]

    def unconsumed(self) -> list[str]:
        """Produced but consumed by nobody (a sink that stores everything does not count)."""
        return [t for t in self.event_types if not self.consumers.get(t)]

    def served_upcast(self, event_type: str) -> bool:
        consumers = self.consumers.get(event_type, [])
        targets = [self.upcast_target(service, event_type) for service in consumers]
        return bool(consumers) and all(target and self.producers.get(target) for target in targets)

    def upcast_target(self, service: str, event_type: str) -> str | None:
        """The version `service` receives `event_type` upcast as, if it does."""
        return self.upcasts.get(service, {}).get(event_type)

    def other_versions(self, event_type: str) -> list[str]:
        """The other versions of the same fact that appear in the choreography."""
        name = event_type.rpartition(".v")[0]
        return [t for t in self.event_types if t != event_type and t.rpartition(".v")[0] == name]

    def consumer_label(self, service: str, event_type: str) -> str:
        """`climate (as v2)` when the service receives this version upcast."""
        target = self.upcast_target(service, event_type)
        label = self._mark(service)
        return f"{label} ({_as_version(target)})" if target else label

    def _versions_note(self, types: list[str], side: dict[str, list[str]], what: str) -> str:
        others = {t: [v for v in self.other_versions(t) if side.get(v)] for t in types}
        plain = [t for t in types if not others[t]]
        notes = [f"{t} ({what} {', '.join(others[t])})" for t in types if others[t]]
        return ", ".join(plain + notes)

    def text(self) -> str:
        lines = []
        for event_type in self.event_types:
            producers = ", ".join(self._mark(s) for s in self.producers.get(event_type, [])) or "(nobody)"
            consumers = [*(self.consumer_label(s, event_type) for s in self.consumers.get(event_type, [])),
                         *(self._mark(s) for s in self.stores_everything)]
            lines.append(f"{event_type:<24} {producers} -> {', '.join(consumers) or '(nobody)'}")
        if self.unproduced():
            waiting = self._versions_note(self.unproduced(), self.producers, "produced now:")
            lines.append(f"\nconsumed but produced by nobody: {waiting}")
        if self.unconsumed():
            stored = f" (only stored by {', '.join(self.stores_everything)})" if self.stores_everything else ""
            unconsumed = self._versions_note(self.unconsumed(), self.consumers, "consumers have moved to")
            lines.append(f"produced but consumed by nobody{stored}: {unconsumed}")
        if self.offline:
            lines.append(f"offline: {', '.join(self.offline)}")
        lines += self._schema_lines()
        return "\n".join(lines)

    def _schema_lines(self) -> list[str]:
        lines = []
        if self.announced_only:
            lines.append(f"known from announced schemas only: {', '.join(self.announced_only)}")
        for event_type, services in self.conflicts.items():
            lines.append(f"schema conflict: {event_type} announced with different schemas by {', '.join(services)}")
        for topic, reason in self.refused.items():
            lines.append(f"refused schema announcement on {topic}: {reason}")
        return lines

    def mermaid(self) -> str:
        lines = ["flowchart LR"]
        services = sorted({s for group in (*self.producers.values(), *self.consumers.values()) for s in group}
                          | set(self.stores_everything))
        for service in services:
            label = f"{service} (offline)" if service in self.offline else service
            lines.append(f'  svc_{_node(service)}["{label}"]')
        for event_type in self.event_types:
            lines.append(f'  evt_{_node(event_type)}(["{event_type}"])')
            for producer in self.producers.get(event_type, []):
                lines.append(f"  svc_{_node(producer)} --> evt_{_node(event_type)}")
            for consumer in self.consumers.get(event_type, []) + self.stores_everything:
                target = self.upcast_target(consumer, event_type)
                edge = f"-->|{_as_version(target)}|" if target else "-->"
                lines.append(f"  evt_{_node(event_type)} {edge} svc_{_node(consumer)}")
        for loose in (*self.unproduced(), *self.unconsumed()):
            lines.append(f"  style evt_{_node(loose)} stroke:#d33,stroke-width:2px")
        for conflicted in self.conflicts:
            if conflicted in self.event_types:
                lines.append(f"  style evt_{_node(conflicted)} fill:#fd8")
        return "\n".join(lines)

    def _mark(self, service: str) -> str:
        return f"{service} (offline)" if service in self.offline else service


def _node(name: str) -> str:
    return name.replace(".", "_").replace("-", "_")


def _as_version(target: str) -> str:
    """`alert.raised.v2` -> `as v2`: how an edge names the version its consumer receives upcast."""
    return f"as v{target.rpartition('.v')[2]}"
