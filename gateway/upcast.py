"""Versions of one fact type, and the functions that turn one version into the next.

A new version `name.vN+1` is registered with an upcaster from `name.vN` (and, for a producer's
migration window, a downcaster back). A handler written for the newest version then receives
the older versions converted on the way in; a producer emits the older versions derived from
the newer. Either way the converted event is the same fact: same id, source, subject, time,
sequence, correlation and causation, only its `type` and `data` differ. Consumers dedupe by id,
so a fact that arrives in two versions is handled once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .events import ENVELOPES, AlertRaisedV1, AlertRaisedV2, Event, EventData, register_event_type


@dataclass(frozen=True)
class VersionStep:
    """`older` -> `newer` (the next version of the same fact) and back."""

    older: type[EventData]
    newer: type[EventData]
    upcast: Callable[[Any], EventData]
    downcast: Callable[[Any], EventData] | None = None


_STEPS: dict[str, VersionStep] = {}  # by the older type's name


def family(event_type: str) -> tuple[str, int]:
    """`alert.raised.v2` -> (`alert.raised`, 2)."""
    name, _, version = event_type.rpartition(".v")
    if not name or not version.isdigit():
        raise ValueError(f"{event_type!r} has no major version (name.vN)")
    return name, int(version)


def register_version(older: type[EventData], newer: type[EventData], *, upcast: Callable[[Any], EventData],
                     downcast: Callable[[Any], EventData] | None = None) -> VersionStep:
    """Register `newer` as the next version of `older` with the function from one to the other.

    ValueError unless both are the same fact with consecutive versions (`x.v1` -> `x.v2`), or if
    `older` already has a different next version.
    """
    older_type, newer_type = register_event_type(older), register_event_type(newer)
    (old_name, old_version), (new_name, new_version) = family(older_type), family(newer_type)
    if old_name != new_name or new_version != old_version + 1:
        raise ValueError(f"{newer_type} is not the next version of {older_type}")
    step = VersionStep(older, newer, upcast, downcast)
    known = _STEPS.setdefault(older_type, step)
    if known.newer is not newer:
        raise ValueError(f"{older_type} already has the next version {known.newer.event_type}")
    return known


def older_versions(event_type: str) -> list[str]:
    """The registered versions that upcast to `event_type`, newest first."""
    found, current = [], event_type
    while step := next((s for s in _STEPS.values() if s.newer.event_type == current), None):
        current = step.older.event_type
        found.append(current)
    return found


def upcast_data(data: EventData, to_type: str) -> EventData:
    """`data` converted version by version up to `to_type`; ValueError if no upcasters lead there."""
    while data.event_type != to_type:
        step = _STEPS.get(data.event_type)
        if step is None:
            raise ValueError(f"no upcaster from {data.event_type} towards {to_type}")
        data = step.upcast(data)
    return data


def _downcasters(from_type: str, to_type: str) -> list[Callable[[Any], EventData]] | None:
    """The downcasters that lead from `from_type` to the older (or same) version `to_type`, newest
    first; None if there are none."""
    chain: list[Callable[[Any], EventData]] = []
    current = to_type
    while current != from_type:
        step = _STEPS.get(current)
        if step is None or step.downcast is None:
            return None
        chain.insert(0, step.downcast)
        current = step.newer.event_type
    return chain


def can_downcast(from_type: str, to_type: str) -> bool:
    """True if downcasters lead from `from_type` to the older (or same) version `to_type`."""
    return _downcasters(from_type, to_type) is not None


def downcast_data(data: EventData, to_type: str) -> EventData:
    """`data` converted down to the older version `to_type`; ValueError if no downcasters lead there."""
    chain = _downcasters(data.event_type, to_type)
    if chain is None:
        raise ValueError(f"no downcaster from {data.event_type} to {to_type}")
    for downcast in chain:
        data = downcast(data)
    return data


def as_version(event: Event, to_type: str) -> Event:
    """The same fact as `event` in version `to_type`: every envelope attribute kept, `data` upcast."""
    return same_fact(event, upcast_data(event.data, to_type))


def same_fact(event: Event, data: EventData) -> Event:
    """`event` carrying `data` (another version of its data) instead: every other attribute kept."""
    envelope = event.model_dump(exclude={"type", "data"})
    return ENVELOPES[data.event_type](**envelope, type=data.event_type, data=data)


register_version(AlertRaisedV1, AlertRaisedV2, upcast=AlertRaisedV2.from_v1, downcast=AlertRaisedV2.to_v1)
