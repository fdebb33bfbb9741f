"""Queries over the stored history: InfluxQL over `/query`, answered by InfluxDB 1.x, 2.x and 3.x."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .errors import InvalidInput
from .sink.schema import EVENTS
from .topics import validate_event_type, validate_id

DURATION = re.compile(r"[1-9][0-9]{0,6}(s|m|h|d|w)")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ENVELOPE_COLUMNS = ("type", "subject", "source", "id", "correlationid", "causationid", "sequence", "data")


@dataclass(frozen=True)
class HistoryQuery:
    subject: str | None = None
    type: str | None = None
    since: str = "15m"
    limit: int = 1000

    def influxql(self) -> str:
        """The statement; every value is validated before it is placed in the query."""
        if not DURATION.fullmatch(self.since):
            raise InvalidInput(f"--since {self.since!r}: expected a number and a unit s, m, h, d or w, e.g. 15m")
        if not 1 <= self.limit <= 100_000:
            raise InvalidInput(f"--limit {self.limit}: expected 1 to 100000")
        conditions = [f"time > now() - {self.since}"]
        if self.subject is not None:
            conditions.append(f"\"subject\" = '{validate_id(self.subject, 'subject')}'")
        if self.type is not None:
            conditions.append(f"\"type\" = '{validate_event_type(self.type)}'")
        columns = ", ".join(f'"{name}"' for name in ENVELOPE_COLUMNS)
        # The newest `limit` events; rows_to_events puts them back in time order.
        return f"SELECT {columns} FROM \"{EVENTS}\" WHERE {' AND '.join(conditions)} ORDER BY time DESC LIMIT {self.limit}"


def rows_to_events(series: Iterable[dict]) -> list[dict]:
    """Rebuild CloudEvents (as JSON-ready dicts) from the `events` series of a query answer."""
    events = []
    for one in series:
        columns = one["columns"]
        for values in one["values"]:
            row = dict(zip(columns, values))
            event = {
                "specversion": "1.0",
                "id": row["id"],
                "source": row["source"],
                "type": row["type"],
                "subject": row["subject"],
                "time": _rfc3339(row["time"]),
                "correlationid": row["correlationid"],
            }
            if row.get("causationid"):
                event["causationid"] = row["causationid"]
            if row.get("sequence") is not None:
                event["sequence"] = row["sequence"]
            event["data"] = json.loads(row["data"])
            events.append(event)
    return sorted(events, key=lambda event: event["time"])


def _rfc3339(nanoseconds: int) -> str:
    moment = EPOCH + timedelta(microseconds=nanoseconds // 1000)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def format_table(events: list[dict]) -> str:
    lines = [f"{'time':<27} {'type':<20} {'subject':<16} {'summary'}"]
    lines += [f"{e['time']:<27} {e['type']:<20} {e['subject']:<16} {summarize(e['type'], e['data'])}" for e in events]
    return "\n".join(lines)


def summarize(event_type: str, data: dict) -> str:
    """A short human summary of an event's data, for tables and the demo's live view."""
    if event_type == "reading.v1":
        return " ".join(f"{m['name']}={m['value']:g} {m['unit']}" for m in data["measurements"])
    if event_type == "alert.raised.v1":
        return f"{data['alert']}: {data['value']:g} {data['unit']} > {data['limit']:g} for {data['above_seconds']:.0f}s"
    if event_type == "alert.cleared.v1":
        return f"{data['alert']}: {data['value']:g} {data['unit']} < {data['limit']:g}"
    if event_type in ("actuation.requested.v1", "actuator.changed.v1"):
        state = " ".join(f"{key}={data[key]}" for key in ("state", "position") if data.get(key) is not None)
        return f"{state} ({data['reason']})" if "reason" in data else state
    if event_type == "energy.measured.v1":
        return f"{data['energy_wh']:g} Wh from {data['period_start'][11:19]} to {data['period_end'][11:19]}"
    if event_type == "device.offline.v1" and data.get("reason") == "silent":
        return f"silent for {data['silent_seconds']:g}s"
    if event_type == "event.rejected.v1":
        return f"{data['rejected_by']}: {data['reason']}"
    return json.dumps(data, separators=(",", ":"))[:80]
