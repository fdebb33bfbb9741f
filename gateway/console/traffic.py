"""What flows, for the map: each event type's rate over the last 10 s, and the devices grouped by kind.

Devices are the sources `device/{id}`; the map draws one node per kind, never one per device.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from ..events import Event

WINDOW_SECONDS = 10
MAX_TYPES = 1024
MAX_DEVICES = 100_000
UNKNOWN_KIND = "unknown"
DEVICE_PREFIX = "device/"


class TypeRates:
    """Events of each type in one-second buckets over the last WINDOW_SECONDS seconds."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts  # the console's own: `types_untracked` past MAX_TYPES
        self._buckets: dict[str, list[int]] = {}  # type -> WINDOW_SECONDS counts, indexed by second
        self._seconds: dict[str, list[int]] = {}  # type -> the second each bucket counts

    def count(self, event_type: str, now: float) -> bool:
        """Count one event at `now` (seconds); True if its type is new."""
        new = event_type not in self._buckets
        if new and len(self._buckets) >= MAX_TYPES:
            self.counts["types_untracked"] += 1
            return False
        if new:
            self._buckets[event_type] = [0] * WINDOW_SECONDS
            self._seconds[event_type] = [0] * WINDOW_SECONDS
        second = math.floor(now)
        index = second % WINDOW_SECONDS
        buckets, seconds = self._buckets[event_type], self._seconds[event_type]
        if seconds[index] != second:
            seconds[index], buckets[index] = second, 0
        buckets[index] += 1
        return new

    def types(self) -> list[str]:
        return sorted(self._buckets)

    def rate(self, event_type: str, now: float) -> float:
        """Events per second over the last WINDOW_SECONDS whole seconds before `now`, and this one so far."""
        buckets, seconds = self._buckets.get(event_type), self._seconds.get(event_type)
        if buckets is None or seconds is None:
            return 0.0
        oldest = math.floor(now) - WINDOW_SECONDS
        total = sum(count for count, second in zip(buckets, seconds, strict=True) if second > oldest)
        return round(total / WINDOW_SECONDS, 2)

    def rates(self, now: float) -> dict[str, float]:
        return {event_type: self.rate(event_type, now) for event_type in self.types()}


@dataclass
class _Group:
    devices: set[str] = field(default_factory=set)
    emits: set[str] = field(default_factory=set)


class DeviceGroups:
    """The devices seen as sources, grouped by kind (from their data's `kind`, else unknown)."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts  # the console's own: `devices_untracked` past MAX_DEVICES
        self._kind: dict[str, str] = {}  # device id -> its group
        self._groups: dict[str, _Group] = {}

    def see(self, event: Event) -> bool:
        """Take one fact; True if the groups changed shape (a new group, or a new type in one)."""
        if not event.source.startswith(DEVICE_PREFIX):
            return False
        device = event.source[len(DEVICE_PREFIX):]
        kind = getattr(event.data, "kind", None)
        group_name = kind if isinstance(kind, str) and kind else self._kind.get(device, UNKNOWN_KIND)
        known = self._kind.get(device)
        if known is None and len(self._kind) >= MAX_DEVICES:
            self.counts["devices_untracked"] += 1
            return False
        changed = group_name not in self._groups
        if known is not None and known != group_name:  # first seen without a kind, now with one
            self._groups[known].devices.discard(device)
        self._kind[device] = group_name
        group = self._groups.setdefault(group_name, _Group())
        group.devices.add(device)
        if event.type not in group.emits:
            group.emits.add(event.type)
            changed = True
        return changed

    def groups(self) -> list[dict[str, object]]:
        return [{"group": name, "count": len(group.devices), "emits": sorted(group.emits)}
                for name, group in sorted(self._groups.items()) if group.devices]
