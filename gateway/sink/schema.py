"""How events are stored in InfluxDB. The README's "Storage schema" section documents this.

- `events`: one point per event. Tags `type`, `subject`, `source`; fields `id`,
  `correlationid`, `causationid`, `sequence`, `data` (the JSON of the event's data).
- `readings`: one point per measurement of a `reading.v1`. Tags `device`, `metric`,
  `unit`; fields `value` and `event_id`.

A point's identity in InfluxDB is measurement + tag set + timestamp, so the timestamp
is the event time (microseconds) plus a sub-microsecond offset derived from the event
id: a redelivered event overwrites its own point, and two events at the same
microsecond still get separate points.
"""
from __future__ import annotations

import json
import zlib

from ..events import Event, ReadingV1
from .lineprotocol import encode_point

EVENTS = "events"
READINGS = "readings"


def timestamp_ns(event: Event) -> int:
    micros = int(event.time.timestamp()) * 1_000_000 + event.time.microsecond
    return micros * 1000 + zlib.crc32(event.id.encode()) % 1000


def event_lines(event: Event) -> list[str]:
    """The line-protocol lines that store one event."""
    ts = timestamp_ns(event)
    fields: dict[str, str | int] = {"id": event.id, "correlationid": event.correlationid}
    if event.causationid:
        fields["causationid"] = event.causationid
    if event.sequence is not None:
        fields["sequence"] = event.sequence
    fields["data"] = json.dumps(event.data.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False)
    lines = [encode_point(EVENTS, {"type": event.type, "subject": event.subject, "source": event.source}, fields, ts)]
    if isinstance(event.data, ReadingV1):
        lines += [
            encode_point(
                READINGS,
                {"device": event.subject, "metric": m.name, "unit": m.unit},
                {"value": m.value, "event_id": event.id},
                ts,
            )
            for m in event.data.measurements
        ]
    return lines
