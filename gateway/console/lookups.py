"""The console's questions to the stored history: InfluxQL over `/query` with the monitor's read-only account.

Each query is one of gateway/history.py's, run in a worker thread (the HTTP client blocks), at most
CONCURRENCY at a time. StoreError says InfluxDB is unavailable or refused; InvalidInput names a bad
argument.
"""
from __future__ import annotations

import asyncio
from typing import Any

from ..events import EventRejectedV1
from ..history import (
    HistoryQuery,
    device_readings_query,
    event_query,
    events_about_query,
    one_per_fact,
    reading_measurements,
    rows_to_events,
    trace_query,
)
from ..settings import InfluxSettings
from ..sink.influx_v1 import InfluxV1
from .recent import rejection_row, summary_of
from .trace import MAX_TRACE

CONCURRENCY = 4
MAX_POINTS = 5000  # points of one metric
MAX_DEVICE_EVENTS = 1000  # alerts and availability events of one device
STATE_SINCE = "30d"  # how far back a device's latest state is looked for
ALERT_TYPES = ("alert.raised.v1", "alert.raised.v2", "alert.cleared.v1")  # every version: an alert shows once
AVAILABILITY_TYPES = ("device.online.v1", "device.offline.v1")
STATE_TYPES = ("reading.v1", "actuator.changed.v1")


class HistoryLookups:
    def __init__(self, influx: InfluxSettings, concurrency: int = CONCURRENCY) -> None:
        self.database = InfluxV1(influx)
        self._slots = asyncio.Semaphore(concurrency)

    async def _query(self, statement: str) -> list[dict]:
        async with self._slots:
            return await asyncio.to_thread(self.database.query, statement)

    async def chain(self, event_id: str, correlation_id: str | None, since: str) -> list[dict[str, Any]]:
        """The stored events of the chain `event_id` belongs to (or roots), at most MAX_TRACE + 1 of them;
        `correlation_id` when it is already known."""
        if correlation_id is None:
            found = rows_to_events(await self._query(event_query(event_id, since, MAX_TRACE + 1)))
            own = next((event for event in found if event["id"] == event_id), None)
            if own is None or own["correlationid"] == event_id:
                return found
            correlation_id = own["correlationid"]
        return rows_to_events(await self._query(trace_query(correlation_id, since, MAX_TRACE + 1)))

    async def device(self, device: str, since: str) -> dict[str, Any]:
        """A device's readings per metric, its latest state, its alerts and its availability."""
        series = await self._query(device_readings_query(device, since, MAX_POINTS + 1))
        readings, truncated = _readings(series)
        events = one_per_fact(rows_to_events(await self._query(
            events_about_query(device, ALERT_TYPES + AVAILABILITY_TYPES, since, MAX_DEVICE_EVENTS))))
        latest = rows_to_events(await self._query(events_about_query(device, STATE_TYPES, STATE_SINCE, 1)))
        state = latest[-1] if latest else None  # the newest of each measurement's newest
        return {
            "device": device,
            "readings": readings,
            "truncated": truncated,
            "state": state["data"] if state else None,
            "state_type": state["type"] if state else None,
            "state_time": state["time"] if state else None,
            "alerts": [_with_summary(e) for e in events if e["type"] in ALERT_TYPES],
            "availability": [_with_summary(e) for e in events if e["type"] in AVAILABILITY_TYPES],
        }

    async def rejected(self, since: str, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` stored rejections, newest first."""
        query = HistoryQuery(type=EventRejectedV1.event_type, since=since, limit=limit)
        events = rows_to_events(await self._query(query.influxql()))
        return [rejection_row(event) for event in reversed(events)]


def _readings(series: list[dict]) -> tuple[dict[str, dict[str, Any]], bool]:
    """Each metric's points, oldest first, as [unix ms, value]; whether there were more than MAX_POINTS readings."""
    rows = [dict(zip(one["columns"], values, strict=True)) for one in series for values in one["values"]]
    truncated, rows = len(rows) > MAX_POINTS, rows[:MAX_POINTS]  # newest first
    readings: dict[str, dict[str, Any]] = {}
    for row in reversed(rows):
        for name, unit, value in reading_measurements(row):
            metric = readings.setdefault(name, {"unit": unit, "points": []})
            metric["points"].append([row["time"] // 1_000_000, value])
    return readings, truncated


def _with_summary(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "summary": summary_of(event["type"], event["data"])}
