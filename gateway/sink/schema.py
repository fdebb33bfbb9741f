"""How events are stored in InfluxDB. docs/sink.md, "Storage schema", documents this.

- `readings`: one point per `reading.v1` event. Tags `device` (the subject), `type`, `source`,
  `site`, `room`, `kind` when known, and `unit.NAME` for each measurement; fields `id`,
  `correlationid` (only when it differs from `id`), `causationid`, `sequence`, `emittedtime`
  (ns), and one float field per measurement, named after it. A reading whose measurement
  names repeat or take one of those names is stored in `events` instead, like any other event.
- `events`: one point per other event. Tags `type`, `subject`, `source`, and `site`, `room`
  when the event's data places it (for a type known only from its announced schema, when
  they are valid ids); fields `id`, `correlationid`, `causationid`, `sequence`,
  `emittedtime` (ns), `data` (the JSON of the event's data).

A point's identity in InfluxDB is measurement + tag set + timestamp, so the timestamp
is the event time (microseconds) plus a sub-microsecond slot that the same event always
gets: its `sequence` modulo 1,000 when it has one, else a hash of its id. A redelivered
event overwrites its own point; two events of one source at the same microsecond (a
device whose clock counts milliseconds or seconds) get separate points, as their
sequences differ; events without a sequence collide one time in 1,000.
"""
from __future__ import annotations

import zlib
from datetime import datetime
from functools import lru_cache

from ..events import AnnouncedData, Event, ReadingV1
from ..topics import ID_PATTERN
from .lineprotocol import encode_point, series_key

EVENTS = "events"
READINGS = "readings"


def nanoseconds(moment: datetime) -> int:
    return (int(moment.timestamp()) * 1_000_000 + moment.microsecond) * 1000


def timestamp_ns(event: Event) -> int:
    slot = event.sequence if event.sequence is not None else zlib.crc32(event.id.encode())
    return nanoseconds(event.time) + slot % 1000


ENVELOPE_FIELDS = frozenset({"id", "correlationid", "causationid", "sequence", "emittedtime"})
READING_TAGS = frozenset({"device", "type", "source", "site", "room", "kind"})
UNIT_TAG = "unit."  # + the measurement's name: a metric name has no dot, so no tag or field can clash


def _envelope_fields(event: Event, with_correlation: bool = True) -> dict[str, str | int]:
    fields: dict[str, str | int] = {"id": event.id}
    if with_correlation:
        fields["correlationid"] = event.correlationid
    if event.causationid:
        fields["causationid"] = event.causationid
    if event.sequence is not None:
        fields["sequence"] = event.sequence
    if event.emittedtime is not None:
        fields["emittedtime"] = nanoseconds(event.emittedtime)
    return fields


def _place(data: object) -> dict[str, str]:
    place = {"site": getattr(data, "site", None) or "", "room": getattr(data, "room", None) or ""}
    if isinstance(data, AnnouncedData):  # fields only its announced schema describes: tags only if ids
        place = {tag: value if isinstance(value, str) and ID_PATTERN.fullmatch(value) else ""
                 for tag, value in place.items()}
    return place


RESERVED_NAMES = ENVELOPE_FIELDS | READING_TAGS


def storable_as_one_point(data: ReadingV1) -> bool:
    names = {m.name for m in data.measurements}
    return len(names) == len(data.measurements) and names.isdisjoint(RESERVED_NAMES)


def reading_line(event: Event[ReadingV1]) -> str:
    """A reading event as one point: its measurements as fields, with the ids trace needs.

    The hot path of the sink, so written out: ids, metric names and finite floats are what the
    contract validated, and none of them needs escaping (tests/sink/test_schema.py checks the
    line against encode_point's)."""
    data = event.data
    measurements = data.measurements
    series = _reading_series(event.subject, event.type, event.source, data.site or "", data.room or "",
                             data.kind or "", tuple((m.name, m.unit) for m in measurements))
    fields = [f'id="{event.id}"']
    if event.correlationid != event.id:
        fields.append(f'correlationid="{event.correlationid}"')
    if event.causationid:
        fields.append(f'causationid="{event.causationid}"')
    if event.sequence is not None:
        fields.append(f"sequence={event.sequence}i")
    if event.emittedtime is not None:
        fields.append(f"emittedtime={nanoseconds(event.emittedtime)}i")
    fields += [f"{m.name}={float(m.value)!r}" for m in measurements]
    return f"{series} {','.join(fields)} {timestamp_ns(event)}"


@lru_cache(maxsize=65536)
def _reading_series(subject: str, event_type: str, source: str, site: str, room: str, kind: str,
                    units: tuple[tuple[str, str], ...]) -> str:
    """A reading's measurement and tag set, escaped; cached, as a device's readings share it."""
    tags = {"device": subject, "type": event_type, "source": source, "site": site, "room": room, "kind": kind,
            **{UNIT_TAG + name: unit for name, unit in units}}
    return series_key(READINGS, tags)


def event_lines(event: Event) -> list[str]:
    """The line-protocol lines that store one event."""
    if isinstance(event.data, ReadingV1) and storable_as_one_point(event.data):
        return [reading_line(event)]
    fields: dict[str, str | int] = {**_envelope_fields(event), "data": event.data.model_dump_json()}
    tags = {"type": event.type, "subject": event.subject, "source": event.source, **_place(event.data)}
    return [encode_point(EVENTS, tags, fields, timestamp_ns(event))]
