"""How events are stored in InfluxDB. docs/sink.md, "Storage schema", documents this.

- `events`: one point per event. Tags `type`, `subject`, `source`, and `site`, `room`
  when the event's data places it (for a type known only from its announced schema, when
  they are valid ids); fields `id`,
  `correlationid`, `causationid`, `sequence`, `emittedtime` (ns), `data` (the JSON of
  the event's data).
- `readings`: one point per measurement of a `reading.v1`. Tags `device`, `metric`,
  `unit`, and `site`, `room`, `kind` when known; fields `value` and `event_id`.

A point's identity in InfluxDB is measurement + tag set + timestamp, so the timestamp
is the event time (microseconds) plus a sub-microsecond offset derived from the event
id: a redelivered event overwrites its own point, and two events at the same
microsecond still get separate points.
"""
from __future__ import annotations

import zlib
from datetime import datetime

from ..events import AnnouncedData, Event, ReadingV1
from ..topics import ID_PATTERN
from .lineprotocol import encode_point

EVENTS = "events"
READINGS = "readings"


def nanoseconds(moment: datetime) -> int:
    return (int(moment.timestamp()) * 1_000_000 + moment.microsecond) * 1000


def timestamp_ns(event: Event) -> int:
    return nanoseconds(event.time) + zlib.crc32(event.id.encode()) % 1000


def event_lines(event: Event) -> list[str]:
    """The line-protocol lines that store one event."""
    ts = timestamp_ns(event)
    fields: dict[str, str | int] = {"id": event.id, "correlationid": event.correlationid}
    if event.causationid:
        fields["causationid"] = event.causationid
    if event.sequence is not None:
        fields["sequence"] = event.sequence
    if event.emittedtime is not None:
        fields["emittedtime"] = nanoseconds(event.emittedtime)
    fields["data"] = event.data.model_dump_json()
    data = event.data
    place = {"site": getattr(data, "site", None) or "", "room": getattr(data, "room", None) or ""}
    if isinstance(data, AnnouncedData):  # fields only its announced schema describes: tags only if ids
        place = {tag: value if isinstance(value, str) and ID_PATTERN.fullmatch(value) else ""
                 for tag, value in place.items()}
    tags = {"type": event.type, "subject": event.subject, "source": event.source, **place}
    lines = [encode_point(EVENTS, tags, fields, ts)]
    if isinstance(data, ReadingV1):
        location = {**place, "kind": data.kind or ""}
        lines += [
            encode_point(READINGS, {"device": event.subject, "metric": m.name, "unit": m.unit, **location},
                         {"value": m.value, "event_id": event.id}, ts)
            for m in data.measurements
        ]
    return lines
