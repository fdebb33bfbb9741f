"""A fact type the gateway does not know in code, on the real broker: announced, stored, remembered, shown.

A producer (the `admin` account, which may write anywhere) announces the JSON Schema of
`x.happened.v1` on `choreo/schemas/x.happened.v1/somesvc` and publishes facts of it; the sink,
an OS process, stores them (checked with plain HTTP /query) and rejects an unannounced type with
the reason (checked with an independent paho client). The services' own announcements and the
sink's read of `choreo/schemas/#` go through the broker's generated ACL.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from gateway.events import new_event_id, utc_now
from tests.helpers import MqttObserver, influx_query, wait_for

pytestmark = pytest.mark.integration

SCHEMA = {"type": "object", "required": ["count"], "additionalProperties": False,
          "properties": {"count": {"type": "integer", "minimum": 0}, "site": {"type": "string"},
                         "note": {"type": "string", "maxLength": 64}}}
SCHEMA_TOPIC = "choreo/schemas/x.happened.v1/somesvc"


def fact(event_type: str, data: dict, subject: str = "dev-a", cause: str | None = None) -> tuple[str, bytes, str]:
    event_id = new_event_id()
    document = {"specversion": "1.0", "id": event_id, "source": "service/somesvc", "type": event_type,
                "subject": subject, "time": utc_now().isoformat(), "correlationid": cause or event_id, "data": data}
    if cause:
        document["causationid"] = cause
    return f"events/{event_type}/{subject}", json.dumps(document).encode(), event_id


def stored(stack, event_id: str) -> list[dict]:
    return influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password,
                        f"SELECT * FROM events WHERE id = '{event_id}'")


def choreo(stack, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *command], env={**os.environ, **stack.env("monitor")},
                          capture_output=True, text=True, timeout=60)


def test_an_announced_type_is_stored_remembered_and_shown_and_an_unannounced_one_rejected(
        fresh_stack, services, tmp_path):
    stack = fresh_stack
    sink_env = {**stack.env("sink"), "CHOREO_SINK_SPOOL_DIR": str(tmp_path / "spool"),
                "CHOREO_INFLUX_FLUSH_INTERVAL": "0.2"}
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "announcer") as admin:
        admin.subscribe("choreo/services/sink")
        admin.subscribe("choreo/schemas/#")
        admin.subscribe("events/event.rejected.v1/#")

        def sink_online() -> bool:
            return any(json.loads(m.payload)["status"] == "online" for m in admin.on("choreo/services/sink")
                       if m.payload)

        # Announced before the sink first subscribes: the broker hands it the retained schema then.
        admin.publish(SCHEMA_TOPIC, json.dumps(SCHEMA).encode(), retain=True)
        admin.publish("choreo/services/somesvc", json.dumps(
            {"name": "somesvc", "status": "online", "consumes": ["reading.v1"], "emits": ["x.happened.v1"]}).encode(),
            retain=True)
        sink = services.start("sink", ["sink"], sink_env)
        wait_for(sink_online, 30, f"the sink online (log: {services.log_dir / 'sink.log'})")
        # The sink announced, retained, the schema of what it emits, on its own topic, and the broker
        # let it; the monitor account may read every announcement.
        monitor = ("monitor", stack.credentials.mqtt["monitor"])
        with MqttObserver(stack.broker.port, *monitor, client_id="late-reader") as late:
            late.subscribe("choreo/schemas/#")
            retained = wait_for(lambda: {m.topic: m for m in late.messages if m.retain}.keys() >= {
                SCHEMA_TOPIC, "choreo/schemas/event.rejected.v1/sink"} and late.messages, 10, "retained announcements")
        [own] = [m for m in retained if m.topic == "choreo/schemas/event.rejected.v1/sink"]
        assert json.loads(own.payload)["title"] == "EventRejectedV1"

        topic, payload, first = fact("x.happened.v1", {"count": 3, "site": "hq", "note": "door left open"})
        admin.publish(topic, payload)
        [row] = wait_for(lambda: stored(stack, first), 30, "the announced type's event stored")
        assert (row["type"], row["subject"], row["source"], row["site"]) == (
            "x.happened.v1", "dev-a", "service/somesvc", "hq")
        assert json.loads(row["data"]) == {"count": 3, "site": "hq", "note": "door left open"}

        # Data that breaks the announced schema, and a type nobody announces: rejected with the reason.
        topic, payload, invalid = fact("x.happened.v1", {"count": -1})
        admin.publish(topic, payload)
        topic, payload, unknown = fact("y.unannounced.v1", {"count": 1})
        admin.publish(topic, payload)
        wait_for(lambda: len(admin.on("events/event.rejected.v1/")) >= 2, 30, "two rejections")
        reasons = {json.loads(m.payload)["data"]["reason"] for m in admin.on("events/event.rejected.v1/")}
        assert reasons == {"data.count: -1 is less than the minimum of 0",
                           "unknown event type 'y.unannounced.v1': no service announces it"}

        # Stopped, the sink keeps its session; a fact queued meanwhile is validated from the sink's
        # memory after the restart, as the broker does not hand the retained schema to it again.
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(30) == 0, services.log("sink")
        topic, payload, queued = fact("x.happened.v1", {"count": 4}, cause=first)
        admin.publish(topic, payload)
        admin.messages.clear()
        services.start("sink", ["sink"], sink_env)
        wait_for(sink_online, 30, "the sink online again")
        wait_for(lambda: stored(stack, queued), 30, "the queued event stored after the restart")
        assert (tmp_path / "spool" / "sink.schemas.json").exists()
        assert stored(stack, invalid) == [] and stored(stack, unknown) == []
        # The stored facts print, filter and trace like any other, and the map draws the type.
        history = choreo(stack, "history", "--type", "x.happened.v1", "--format", "json")
        assert history.returncode == 0, history.stderr
        assert [e["id"] for e in json.loads(history.stdout)] == [first, queued]
        trace = choreo(stack, "trace", first)
        assert trace.returncode == 0, trace.stderr
        assert trace.stdout.splitlines()[1].split()[3:6] == ["x.happened.v1", "dev-a", "(service/somesvc)"]
        chart = choreo(stack, "map")
        assert chart.returncode == 0, chart.stderr
        assert "x.happened.v1            somesvc -> sink" in chart.stdout
        assert "known from announced schemas only: x.happened.v1" in chart.stdout
