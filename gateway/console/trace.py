"""One causal chain for the trace view: the stored events merged with the recent live ones, each step
with the service that emitted it and how long after its cause it was emitted."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..history import one_per_fact
from .recent import summary_of

MAX_TRACE = 1000  # events of one chain


def _emitted(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event.get("emittedtime") or event["time"])


def step(event: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One event of the chain as the trace view shows it."""
    cause = by_id.get(event.get("causationid") or "")
    took_ms = None if cause is None else round((_emitted(event) - _emitted(cause)).total_seconds() * 1000, 3)
    return {
        "id": event["id"],
        "type": event["type"],
        "subject": event["subject"],
        "source": event["source"],
        "service": event["source"].split("/", 1)[-1],
        "time": event["time"],
        "emittedtime": event.get("emittedtime"),
        "causationid": event.get("causationid"),
        "took_ms": took_ms,
        "summary": summary_of(event["type"], event["data"]),
        "data": event["data"],
    }


def chain(stored: list[dict[str, Any]], live: list[dict[str, Any]], limit: int = MAX_TRACE) -> dict[str, Any] | None:
    """The chain of these events (None if there are none), in the order they were emitted.

    `live`: whether the console's buffer of recent facts holds some of it, so later facts may still come."""
    by_id = {event["id"]: event for event in one_per_fact(stored)}  # a fact in two versions: its newest
    for event in one_per_fact(live):
        by_id.setdefault(event["id"], event)
    if not by_id:
        return None
    events = sorted(by_id.values(), key=lambda event: (_emitted(event), event["time"]))
    return {
        "correlationid": events[0]["correlationid"],
        "events": [step(event, by_id) for event in events[:limit]],
        "live": bool(live),
        "truncated": len(events) > limit,
    }
