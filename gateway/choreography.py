"""The live choreography, drawn from the retained service manifests on `choreo/services/#`.

Who produces and who consumes each event type, as text or as a Mermaid flowchart,
with the loose ends flagged: types nobody produces, and types only stored.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

from .manifest import Manifest
from .transport import Transport

ALL_TYPES = "*"  # the sink's manifest: it consumes every type


async def collect_manifests(transport: Transport, quiet: float = 0.5, timeout: float = 5.0) -> list[Manifest]:
    """Subscribe to the retained manifests and read them until none has come for `quiet` seconds."""
    await transport.subscribe("choreo/services/#", qos=1)
    manifests: dict[str, Manifest] = {}
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        delivery = await transport.receive(timeout=quiet)
        if delivery is None:
            break
        delivery.ack()
        try:
            manifest = Manifest.parse(delivery.message.payload)
        except ValueError:
            continue  # not a manifest: ignore it, it names nobody
        manifests[delivery.message.topic] = manifest
    return sorted(manifests.values(), key=lambda m: m.spec.label)


@dataclass
class Choreography:
    producers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    consumers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    offline: list[str] = field(default_factory=list)
    stores_everything: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, manifests: list[Manifest]) -> Choreography:
        graph = cls()
        for manifest in manifests:
            service = manifest.spec.label
            if not manifest.online:
                graph.offline.append(service)
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
        return [t for t in self.event_types if not self.producers.get(t)]

    def unconsumed(self) -> list[str]:
        """Produced but consumed by nobody (a sink that stores everything does not count)."""
        return [t for t in self.event_types if not self.consumers.get(t)]

    def text(self) -> str:
        lines = []
        for event_type in self.event_types:
            producers = ", ".join(self._mark(s) for s in self.producers.get(event_type, [])) or "(nobody)"
            consumers = [self._mark(s) for s in (*self.consumers.get(event_type, []), *self.stores_everything)]
            lines.append(f"{event_type:<24} {producers} -> {', '.join(consumers) or '(nobody)'}")
        if self.unproduced():
            lines.append(f"\nconsumed but produced by nobody: {', '.join(self.unproduced())}")
        if self.unconsumed():
            stored = f" (only stored by {', '.join(self.stores_everything)})" if self.stores_everything else ""
            lines.append(f"produced but consumed by nobody{stored}: {', '.join(self.unconsumed())}")
        if self.offline:
            lines.append(f"offline: {', '.join(self.offline)}")
        return "\n".join(lines)

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
                lines.append(f"  evt_{_node(event_type)} --> svc_{_node(consumer)}")
        for loose in (*self.unproduced(), *self.unconsumed()):
            lines.append(f"  style evt_{_node(loose)} stroke:#d33,stroke-width:2px")
        return "\n".join(lines)

    def _mark(self, service: str) -> str:
        return f"{service} (offline)" if service in self.offline else service


def _node(name: str) -> str:
    return name.replace(".", "_").replace("-", "_")
