"""Readings stored in the layout before 0.3 moved to the current one (gateway/sink/migration.py), on a real
InfluxDB, checked with plain /query and with `choreo history` and `choreo trace` as a user runs them."""
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from gateway.events import AlertRaisedV1, Measurement, ReadingV1, new_event
from gateway.settings import load_settings
from gateway.sink.influx_v1 import InfluxV1
from gateway.sink.lineprotocol import encode_point
from gateway.sink.schema import event_lines, nanoseconds, timestamp_ns
from tests.helpers import influx_query

pytestmark = pytest.mark.integration


def old_layout(event) -> list[str]:
    """The lines the sink wrote for a reading before 0.3: an `events` point with the data as JSON,
    and a `readings` point per measurement."""
    ts, data = timestamp_ns(event), event.data
    fields = {"id": event.id, "correlationid": event.correlationid, "sequence": event.sequence,
              "emittedtime": nanoseconds(event.emittedtime), "data": data.model_dump_json()}
    place = {"site": data.site or "", "room": data.room or ""}
    lines = [encode_point("events", {"type": event.type, "subject": event.subject, "source": event.source, **place},
                          fields, ts)]
    return lines + [encode_point("readings", {"device": event.subject, "metric": m.name, "unit": m.unit, **place,
                                              "kind": data.kind or ""}, {"value": m.value, "event_id": event.id}, ts)
                    for m in data.measurements]


def choreo(stack, *command: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", *command], env={**os.environ, **stack.env("monitor")},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_old_readings_are_rewritten_as_one_point_each_and_history_and_trace_read_them(fresh_stack):
    stack = fresh_stack
    start = datetime.now(UTC) - timedelta(minutes=5)
    readings = [new_event(ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=20.0 + n),
                                                  Measurement(name="humidity", unit="%RH", value=50.0)],
                                    site="hq", room="lab"),
                          source="device/old-1", subject="old-1", time=start + timedelta(seconds=n), sequence=n)
                for n in range(7)]
    alert = new_event(AlertRaisedV1(alert="temperature.high", metric="temperature", value=26.0, limit=25.0, unit="Cel",
                                    above_seconds=0), source="reactor/threshold", subject="old-1", cause=readings[-1])
    writer = InfluxV1(load_settings(stack.env("sink")).influx)
    writer.write([line for event in readings for line in old_layout(event)] + event_lines(alert))

    admin = {**stack.env("sink"), "CHOREO_INFLUX_USERNAME": "admin",
             "CHOREO_INFLUX_PASSWORD": stack.credentials.influx_admin_password}
    env = {**os.environ, **admin, "PYTHONPATH": os.getcwd()}
    for _ in range(2):  # a second run finds nothing left to do
        migrated = subprocess.run([sys.executable, "-m", "gateway.sink.migration"], env=env, capture_output=True,
                                  text=True, timeout=60)
        assert migrated.returncode == 0, migrated.stderr
    assert "migration: 0 reading events rewritten" in migrated.stdout

    def query(statement: str) -> list[dict]:
        return influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password, statement)

    rows = query("SELECT * FROM readings")
    assert [(r["id"], r["temperature"], r["humidity"], r["unit.temperature"], r["site"]) for r in rows] == [
        (e.id, 20.0 + n, 50.0, "Cel", "hq") for n, e in enumerate(readings)]
    assert query("SELECT COUNT(value) FROM readings") == []  # the old points are gone
    assert query("SHOW TAG VALUES FROM readings WITH KEY = \"metric\"") == []
    assert query("SELECT * FROM events WHERE type = 'reading.v1'") == []
    [stored_alert] = query("SELECT * FROM events")  # other events stay as they were
    assert stored_alert["id"] == alert.id

    history = json.loads(choreo(stack, "history", "--metric", "temperature", "--subject", "old-1", "--since", "1h",
                                "--format", "json"))
    assert [(row["value"], row["unit"], row["event_id"]) for row in history] == [
        (20.0 + n, "Cel", e.id) for n, e in enumerate(readings)]
    trace = choreo(stack, "trace", readings[-1].id).splitlines()
    assert trace[0].startswith("reading.v1  old-1  (device/old-1)  temperature=26 Cel humidity=50 %RH") or \
        trace[0].startswith("reading.v1  old-1  (device/old-1)  humidity=50 %RH temperature=26 Cel")
    assert "alert.raised.v1" in trace[1]
