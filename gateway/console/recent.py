"""The console's memory of the latest facts: bounded, by id and by correlation, and the latest rejections.

A trace merges the stored history with these, so a chain completes live as its later facts arrive;
the rejections page shows the live ones beside the stored ones.
"""
from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

from ..events import AnnouncedData, Event, EventRejectedV1
from ..history import summarize
from ..topics import ID_PATTERN

MAX_RECENT = 10_000  # facts kept for traces
MAX_REJECTED = 500


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def place(event: Event) -> tuple[str | None, str | None]:
    """The site and room an event's data names; for a type known only from its announced schema,
    only when they are valid ids."""
    data = event.data
    site, room = getattr(data, "site", None), getattr(data, "room", None)
    if isinstance(data, AnnouncedData):
        site, room = (value if isinstance(value, str) and ID_PATTERN.fullmatch(value) else None
                      for value in (site, room))
    return site, room


def data_of(event: Event) -> dict[str, Any]:
    return event.data.model_dump(mode="json")


def summary_of(event_type: str, data: dict[str, Any]) -> str:
    try:
        return summarize(event_type, data)
    except (KeyError, TypeError, ValueError):  # a type whose data is not the shape summarize expects
        return ""


def fact_row(event: Event) -> dict[str, Any]:
    """What the stream sends of one fact."""
    site, room = place(event)
    return {"id": event.id, "type": event.type, "subject": event.subject, "source": event.source,
            "time": rfc3339(event.time), "site": site, "room": room,
            "summary": summary_of(event.type, data_of(event)),
            "correlationid": event.correlationid, "causationid": event.causationid}


def event_dict(event: Event) -> dict[str, Any]:
    """An event as `rows_to_events` rebuilds a stored one."""
    return {"id": event.id, "source": event.source, "type": event.type, "subject": event.subject,
            "time": rfc3339(event.time), "correlationid": event.correlationid, "causationid": event.causationid,
            "sequence": event.sequence, "emittedtime": rfc3339(event.emittedtime) if event.emittedtime else None,
            "data": data_of(event)}


def rejection_row(event: dict[str, Any]) -> dict[str, Any]:
    """One row of the rejections page, from an `event.rejected.v1` as a dict (stored or live)."""
    data = event["data"]
    return {"time": event["time"], "rejected_by": data.get("rejected_by"), "reason": data.get("reason"),
            "topic": data.get("topic"), "excerpt": data.get("excerpt"), "subject": event["subject"],
            "id": event["id"]}


class RecentFacts:
    """The latest `limit` facts, found by id and by correlation id; the oldest go first."""

    def __init__(self, limit: int = MAX_RECENT, rejected_limit: int = MAX_REJECTED) -> None:
        self.limit = limit
        self._order: deque[Event] = deque()
        self._by_id: dict[str, Event] = {}
        self._by_correlation: dict[str, deque[str]] = {}
        self.rejected: deque[dict[str, Any]] = deque(maxlen=rejected_limit)  # rows, oldest first

    def __len__(self) -> int:
        return len(self._order)

    def add(self, event: Event) -> bool:
        """Keep `event`; False if it is already kept (a delivery seen twice)."""
        if event.id in self._by_id:
            return False
        if len(self._order) >= self.limit:
            self._forget(self._order.popleft())
        self._order.append(event)
        self._by_id[event.id] = event
        self._by_correlation.setdefault(event.correlationid, deque()).append(event.id)
        if event.type == EventRejectedV1.event_type:
            self.rejected.append(rejection_row(event_dict(event)))
        return True

    def _forget(self, event: Event) -> None:
        del self._by_id[event.id]
        chain = self._by_correlation[event.correlationid]
        chain.remove(event.id)  # the oldest of its chain: at the front
        if not chain:
            del self._by_correlation[event.correlationid]

    def correlation_of(self, event_id: str) -> str | None:
        """The correlation id of a kept event, or `event_id` itself when it is a kept chain's correlation id."""
        event = self._by_id.get(event_id)
        if event is not None:
            return event.correlationid
        return event_id if event_id in self._by_correlation else None

    def chain(self, correlation_id: str) -> list[Event]:
        return [self._by_id[event_id] for event_id in self._by_correlation.get(correlation_id, ())]
