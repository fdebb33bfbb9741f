"""Queries over the stored history: InfluxQL over `/query`, answered by InfluxDB 1.x, 2.x and 3.x.

Every value placed in a statement is validated first (ids, types, metric names, times),
so no filter can change the query's meaning.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import InvalidInput
from .events import METRIC_NAME_PATTERN
from .sink.schema import EVENTS, READING_TAGS, READINGS, UNIT_TAG
from .topics import EVENT_TYPE_PATTERN, validate_event_type, validate_id
from .upcast import family

DURATION = re.compile(r"[1-9][0-9]{0,6}(s|m|h|d|w)")
EVENT_ID = re.compile(r"[0-9A-Za-z_-]{10,64}")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ENVELOPE_COLUMNS: tuple[str, ...] = (
    "type", "subject", "source", "id", "correlationid", "causationid", "sequence", "emittedtime", "data")
READING_COLUMNS: tuple[str, ...] = ("device", "metric", "value", "unit", "site", "room", "kind", "event_id")
READING_TYPE = "reading.v1"  # stored one point per event in READINGS; every other type in EVENTS
READING_FAMILY = family(READING_TYPE)[0]
# a type without its version (`alert.raised`): every version of it
TYPE_FAMILY = re.compile(r"[a-z][a-z0-9]*(?:\.[a-z][a-z0-9]*)*")


def time_bound(value: str, flag: str) -> str:
    """An InfluxQL time expression: a duration ago (`15m`) or an RFC 3339 time."""
    if DURATION.fullmatch(value):
        return f"now() - {value}"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{flag} {value!r}: expected a duration ago (30s, 15m, 2h, 7d) "
                           "or an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{flag} {value!r}: an RFC 3339 time needs its UTC offset, e.g. Z")
    return "'" + moment.astimezone(UTC).isoformat().replace("+00:00", "Z") + "'"


@dataclass(frozen=True)
class HistoryQuery:
    """Stored events, or with `metric` the stored readings of that metric, newest `limit` first."""

    subject: str | None = None
    type: str | None = None
    site: str | None = None
    room: str | None = None
    metric: str | None = None
    since: str = "15m"
    until: str | None = None
    limit: int = 1000

    @property
    def readings(self) -> bool:
        return self.metric is not None

    def influxql(self) -> str:
        if not 1 <= self.limit <= 100_000:
            raise InvalidInput(f"--limit {self.limit}: expected 1 to 100000")
        conditions = [f"time > {time_bound(self.since, '--since')}"]
        if self.until is not None:
            conditions.append(f"time <= {time_bound(self.until, '--until')}")
        for tag, value in {"site": self.site, "room": self.room}.items():
            if value is not None:
                conditions.append(f"\"{tag}\" = '{validate_id(value, tag)}'")
        if self.metric is not None:  # the readings that have that metric
            if self.type is not None:
                raise InvalidInput("--type and --metric do not go together: --metric queries readings")
            if not METRIC_NAME_PATTERN.fullmatch(self.metric):
                raise InvalidInput(f"--metric {self.metric!r}: expected a metric name such as temperature")
            if self.subject is not None:
                conditions.append(f"\"device\" = '{validate_id(self.subject, 'subject')}'")
            conditions.append(f"\"{UNIT_TAG}{self.metric}\" != ''")  # the points that have the metric
            selected = ", ".join(f'"{name}"' for name in (self.metric, UNIT_TAG + self.metric, *READING_TAGS, "id"))
            sources = f'"{READINGS}"'
        else:
            if self.subject is not None:
                conditions.append(subject_condition(self.subject))
            if self.type is not None:
                conditions.append(type_condition(self.type))
            selected, sources = "*", event_sources([self.type] if self.type else None)
        # The newest `limit` rows of each measurement; rows() puts them back in time order.
        where = " AND ".join(conditions)
        return f"SELECT {selected} FROM {sources} WHERE {where} ORDER BY time DESC LIMIT {self.limit}"

    def rows(self, series: Iterable[dict]) -> list[dict]:
        if self.metric is not None:
            return rows_to_readings(series, self.metric)
        return rows_to_events(series)[-self.limit:]


def type_condition(event_type: str) -> str:
    """Events of one type (`alert.raised.v1`), or of every version of it (`alert.raised`)."""
    if len(event_type) <= 128 and EVENT_TYPE_PATTERN.fullmatch(event_type):
        return f"\"type\" = '{event_type}'"
    if len(event_type) <= 120 and TYPE_FAMILY.fullmatch(event_type):
        return f"\"type\" =~ /^{re.escape(event_type)}\\.v[0-9]+$/"
    raise InvalidInput(f"invalid event type {event_type[:128]!r}: expected a dotted lower-case name with its "
                       "version (alert.raised.v1), or without it for every version (alert.raised)")


def event_sources(types: Iterable[str] | None) -> str:
    """The measurements that hold events of these types (of any type: None); a type may omit its version."""
    if types is not None and not any(t in (READING_TYPE, READING_FAMILY) for t in types):
        return f'"{EVENTS}"'
    return f'"{EVENTS}", "{READINGS}"'


def subject_condition(subject: str) -> str:
    """Events about `subject`: tagged `subject` in EVENTS, `device` in READINGS."""
    safe = validate_id(subject, "subject")
    return f"(\"subject\" = '{safe}' OR \"device\" = '{safe}')"


def _rows(series: Iterable[dict]) -> Iterable[dict]:
    for one in series:
        for values in one["values"]:
            yield dict(zip(one["columns"], values, strict=True))


def rows_to_events(series: Iterable[dict]) -> list[dict]:
    """Rebuild CloudEvents (as JSON-ready dicts) from the `events` and `readings` series of a query answer."""
    events = []
    for one in series:
        rebuild = _reading_event if one.get("name") == READINGS else _event
        events += [rebuild(row) for row in _rows([one])]
    return sorted(events, key=lambda event: event["time"])


def _envelope(row: dict, subject: str) -> dict:
    event = {
        "specversion": "1.0",
        "id": row["id"],
        "source": row["source"],
        "type": row["type"],
        "subject": subject,
        "time": rfc3339(row["time"]),
        "correlationid": row.get("correlationid") or row["id"],  # a stored reading omits its own id
    }
    if row.get("causationid"):
        event["causationid"] = row["causationid"]
    if row.get("sequence") is not None:
        event["sequence"] = row["sequence"]
    if row.get("emittedtime") is not None:
        event["emittedtime"] = rfc3339(row["emittedtime"])
    return event


def _event(row: dict) -> dict:
    return {**_envelope(row, row["subject"]), "data": json.loads(row["data"])}


def _reading_event(row: dict) -> dict:
    data = {"site": row.get("site"), "room": row.get("room"), "kind": row.get("kind"),
            "measurements": [{"name": name, "unit": unit, "value": value}
                             for name, unit, value in reading_measurements(row)]}
    return {**_envelope(row, row["device"]), "data": data}


def reading_measurements(row: dict) -> list[tuple[str, str, float]]:
    """(name, unit, value) of each measurement in a stored reading's row: the fields that have a unit tag."""
    return [(column[len(UNIT_TAG):], unit, row[column[len(UNIT_TAG):]]) for column, unit in row.items()
            if column.startswith(UNIT_TAG) and unit and row.get(column[len(UNIT_TAG):]) is not None]


def rows_to_readings(series: Iterable[dict], metric: str) -> list[dict]:
    """One metric's stored readings from the `readings` series of a query answer, oldest first."""
    readings = [{"time": rfc3339(row["time"]), "device": row["device"], "metric": metric, "value": row[metric],
                 "unit": row[UNIT_TAG + metric], "site": row.get("site"), "room": row.get("room"),
                 "kind": row.get("kind"), "event_id": row["id"]} for row in _rows(series)]
    return sorted(readings, key=lambda reading: reading["time"])


def rfc3339(nanoseconds: int) -> str:
    moment = EPOCH + timedelta(microseconds=nanoseconds // 1000)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def format_rows(rows: list[dict], style: str, readings: bool) -> str:
    if style == "json":
        return json.dumps(rows, indent=2)
    if style == "csv":
        return _csv(rows, ["time", *READING_COLUMNS] if readings else ["time", *ENVELOPE_COLUMNS])
    return _reading_table(rows) if readings else _event_table(rows)


def _csv(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v, separators=(",", ":")) if isinstance(v, dict) else v for k, v in row.items()})
    return out.getvalue().rstrip("\n")


def _event_table(events: list[dict]) -> str:
    lines = [f"{'time':<27} {'type':<22} {'subject':<20} summary"]
    lines += [f"{e['time']:<27} {e['type']:<22} {e['subject']:<20} {summarize(e['type'], e['data'])}" for e in events]
    return "\n".join(lines)


def _reading_table(readings: list[dict]) -> str:
    lines = [f"{'time':<27} {'device':<20} {'metric':<12} {'value':>12} unit  where"]
    for r in readings:
        where = "/".join(part for part in (r["site"], r["room"]) if part)
        lines.append(f"{r['time']:<27} {r['device']:<20} {r['metric']:<12} {r['value']:>12g} {r['unit']:<5} {where}")
    return "\n".join(lines)


def summarize(event_type: str, data: dict) -> str:
    """A short human summary of an event's data, for tables, traces and the demo's live view."""
    if event_type == "reading.v1":
        return " ".join(f"{m['name']}={m['value']:g} {m['unit']}" for m in data["measurements"])
    if event_type == "alert.raised.v1":
        return f"{data['alert']}: {data['value']:g} {data['unit']} > {data['limit']:g} for {data['above_seconds']:.0f}s"
    if event_type == "alert.raised.v2":
        return (f"{data['alert']} ({data['severity']}): {data['value']:g} {data['unit']} > {data['limit']:g} "
                f"for {data['above_seconds']:.0f}s, rule {data['rule']}")
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


def validate_event_id(value: str) -> str:
    if not isinstance(value, str) or not EVENT_ID.fullmatch(value):
        raise InvalidInput(f"{str(value)[:80]!r} is not an event id: expected 10-64 characters of A-Z a-z 0-9 _ -")
    return value


def trace_query(correlation_id: str, since: str = "7d", limit: int | None = None) -> str:
    """The events of one chain; with `limit`, its first `limit` events."""
    validate_event_id(correlation_id)
    bounded = f" LIMIT {int(limit)}" if limit is not None else ""
    # A stored reading has no correlation id field when it is its own: the root is found by its id.
    return (f'SELECT * FROM {event_sources(None)} WHERE time > {time_bound(since, "--since")} '
            f"AND (\"correlationid\" = '{correlation_id}' OR \"id\" = '{correlation_id}'){bounded}")


def event_query(event_id: str, since: str = "7d", limit: int = 1000) -> str:
    """The event with this id, and the events of the chain it is the correlation id of."""
    validate_event_id(event_id)
    return (f'SELECT * FROM {event_sources(None)} WHERE time > {time_bound(since, "since")} '
            f"AND (\"id\" = '{event_id}' OR \"correlationid\" = '{event_id}') LIMIT {int(limit)}")


def events_about_query(subject: str, types: Iterable[str], since: str, limit: int) -> str:
    """The newest `limit` events of each measurement of these types about one subject (oldest first
    once through rows_to_events: the newest is the last)."""
    types = list(types)
    alternatives = " OR ".join(f"\"type\" = '{validate_event_type(t)}'" for t in types)
    return (f'SELECT * FROM {event_sources(types)} WHERE time > {time_bound(since, "since")} '
            f"AND {subject_condition(subject)} AND ({alternatives}) ORDER BY time DESC LIMIT {int(limit)}")


def device_readings_query(device: str, since: str, limit: int) -> str:
    """A device's newest `limit` stored readings, newest first (each with every metric it measured)."""
    validate_id(device)
    return (f'SELECT * FROM "{READINGS}" WHERE time > {time_bound(since, "since")} '
            f"AND \"device\" = '{device}' ORDER BY time DESC LIMIT {int(limit)}")


def one_per_fact(events: list[dict]) -> list[dict]:
    """One event per id: a fact emitted in several versions (docs/evolving-events.md) shows as its
    newest version, with the older versions' types in `versions`."""
    newest: dict[str, dict] = {}
    for event in events:
        kept = newest.get(event["id"])
        if kept is None:
            newest[event["id"]] = {**event, "versions": []}
        else:
            older, newer = sorted((kept, event), key=lambda e: family(e["type"])[1])
            newest[event["id"]] = {**newer, "versions": sorted({*kept["versions"], older["type"]})}
    return list(newest.values())


def format_trace(events: list[dict]) -> str:
    """The causal tree of one chain; each step shows how long after its cause it was emitted."""
    events = one_per_fact(events)
    by_id = {event["id"]: event for event in events}
    children: dict[str | None, list[dict]] = {}
    for event in events:
        parent = event.get("causationid") if event.get("causationid") in by_id else None
        children.setdefault(parent, []).append(event)
    lines: list[str] = []

    def walk(event: dict, prefix: str, last: bool, parent: dict | None) -> None:
        step = ""
        if parent is not None:
            step = f"+{_emitted_gap(parent, event) * 1000:.1f} ms  "
        branch = "" if parent is None else ("└─ " if last else "├─ ")
        also = f" (also {', '.join(event['versions'])})" if event.get("versions") else ""
        lines.append(f"{prefix}{branch}{step}{event['type']}{also}  {event['subject']}  ({event['source']})  "
                     f"{summarize(event['type'], event['data'])}  [{event['time']}]")
        kids = sorted(children.get(event["id"], []), key=lambda e: e.get("emittedtime") or e["time"])
        extension = "" if parent is None else ("   " if last else "│  ")
        for index, child in enumerate(kids):
            walk(child, prefix + extension, index == len(kids) - 1, event)

    for root in sorted(children.get(None, []), key=lambda e: e["time"]):
        walk(root, "", True, None)
    return "\n".join(lines)


def _emitted_gap(parent: dict, child: dict) -> float:
    def moment(event: dict) -> datetime:
        return datetime.fromisoformat((event.get("emittedtime") or event["time"]).replace("Z", "+00:00"))
    return (moment(child) - moment(parent)).total_seconds()
