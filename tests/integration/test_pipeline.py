"""The walking skeleton end to end: every service its own OS process, real Mosquitto, real InfluxDB.

What reached InfluxDB is checked with plain HTTP queries and what reached the broker
with paho-mqtt, never with the product's own transport or history code.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from gateway.credentials import device_password
from tests.helpers import MqttObserver, influx_query, wait_for

pytestmark = pytest.mark.integration

FAST = {
    "CHOREO_REACTORS_THRESHOLD_HIGH": "28",
    "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "0.5",
    "CHOREO_INFLUX_FLUSH_INTERVAL": "0.2",
}
CONSUMERS = (("sink", ["sink"]), ("climate", ["reactor", "climate"]), ("threshold", ["reactor", "threshold"]),
             ("ingest", ["ingest"]))


def query(stack, statement: str) -> list[dict]:
    return influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password, statement)


def start_consumers(stack, services, observer: MqttObserver, settings: dict) -> None:
    """Start sink, reactors and ingest, each once the previous announced itself online."""
    for name, command in CONSUMERS:
        services.start(name, command, {**stack.env(name), **settings})

        def online(name=name):
            return any(json.loads(m.payload)["status"] == "online" for m in observer.on(f"choreo/services/{name}"))

        wait_for(online, 30, f"{name} to come online (log: {services.log_dir / (name + '.log')})")


def test_reading_to_alert_to_influxdb_with_rejections_and_history(fresh_stack, services, fleet_file):
    stack = fresh_stack
    settings = {**FAST, "CHOREO_FLEET_FILE": str(fleet_file),
                "CHOREO_REACTORS_STATE_DIR": str(fleet_file.parent / "state")}
    monitor = ("monitor", stack.credentials.mqtt["monitor"])
    with MqttObserver(stack.broker.port, *monitor, client_id="pipeline-observer") as observer:
        observer.subscribe("choreo/services/+")
        observer.subscribe("events/#")
        start_consumers(stack, services, observer, settings)
        devices = services.start("devices", ["devices"], {**stack.env("devices"), **settings})

        # An alert whose cause is a stored reading.
        def alert_caused_by_stored_reading():
            for alert in query(stack, "SELECT * FROM events WHERE type = 'alert.raised.v1'"):
                # a reading is stored as one point in `readings`; a root omits its correlation id (its own id)
                cause = query(stack, f"SELECT * FROM readings WHERE id = '{alert['causationid']}'")
                if cause and (cause[0].get("correlationid") or cause[0]["id"]) == alert["correlationid"] \
                        == cause[0]["id"]:
                    return alert
            return None

        alert = wait_for(alert_caused_by_stored_reading, 60, "an alert.raised.v1 caused by a stored reading.v1")
        assert alert["source"] == "reactor/threshold"
        assert json.loads(alert["data"])["limit"] == 28.0
        assert json.loads(alert["data"])["room"] == "lab"

        # The actuation loop closes: alert -> actuation.requested -> actuator.changed, one correlation.
        def fan_switched_on():
            rows = query(stack, "SELECT * FROM events WHERE type = 'actuator.changed.v1' AND subject = 'lab-fan-1'")
            return [r for r in rows if json.loads(r["data"]).get("state") == "on" and r.get("causationid")]

        [changed] = wait_for(fan_switched_on, 60, "lab-fan-1 reporting state on")
        [request] = query(stack, f"SELECT * FROM events WHERE id = '{changed['causationid']}'")
        assert request["type"] == "actuation.requested.v1" and request["source"] == "reactor/climate"
        # the alert was emitted in two versions under one id (docs/evolving-events.md): both are stored
        causes = query(stack, f"SELECT * FROM events WHERE id = '{request['causationid']}'")
        assert sorted(c["type"] for c in causes) == ["alert.raised.v1", "alert.raised.v2"]
        cause = causes[0]
        [reading] = query(stack, f"SELECT * FROM readings WHERE id = '{cause['causationid']}'")
        assert reading["type"] == "reading.v1"
        assert changed["correlationid"] == request["correlationid"] == cause["correlationid"] == reading["id"]

        # `choreo trace` prints that chain as a tree, each step with the time it took.
        traced = subprocess.run([sys.executable, "-m", "gateway.cli", "trace", reading["id"]],
                                env={**os.environ, **stack.env("monitor")}, capture_output=True, text=True, timeout=60)
        assert traced.returncode == 0, traced.stderr
        steps = [line for line in traced.stdout.splitlines() if "reading.v1" in line or " ms  " in line]
        assert [s.split(" ms  ")[-1].split()[0] if " ms  " in s else s.split()[0] for s in steps[:4]] == [
            "reading.v1", "alert.raised.v2", "actuation.requested.v1", "actuator.changed.v1"]

        # A malformed payload from a real device account becomes a stored rejection naming the reason.
        bad_password = device_password(stack.credentials.fleet_secret, "bad-1")
        with MqttObserver(stack.broker.device_port, "bad-1", bad_password, client_id="bad-1") as bad_device:
            bad_device.publish("devices/bad-1/telemetry", b'{"seq": 1, "temperature": "very hot"}')
        rejected = wait_for(lambda: query(stack, "SELECT * FROM events WHERE type = 'event.rejected.v1'"),
                            30, "a stored event.rejected.v1")
        assert rejected[0]["subject"] == "bad-1"
        reason = json.loads(rejected[0]["data"])["reason"]
        assert reason == "field 'temperature' must be a number, got str"

        # ... and readings keep flowing after it.
        after = rejected[0]["time"]
        wait_for(lambda: len(query(stack, f"SELECT id FROM readings WHERE time > {after}")) >= 5,
                 30, "readings stored after the rejection")

        # `choreo history` prints one device's stored events as JSON.
        history = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "history", "--subject", "lab-temperature-1", "--format", "json"],
            env={**os.environ, **stack.env("monitor")}, capture_output=True, text=True, timeout=60,
        )
        assert history.returncode == 0, history.stderr
        events = json.loads(history.stdout)
        assert events and {e["subject"] for e in events} == {"lab-temperature-1"}
        assert {"reading.v1", "device.online.v1"} <= {e["type"] for e in events}

        # `choreo map` draws the live choreography from the services' manifests.
        chart = subprocess.run([sys.executable, "-m", "gateway.cli", "map"], env={**os.environ, **stack.env("monitor")},
                               capture_output=True, text=True, timeout=60)
        assert chart.returncode == 0, chart.stderr
        assert "reading.v1               ingest -> threshold, sink" in chart.stdout
        assert "alert.raised.v1          threshold -> climate (as v2), sink" in chart.stdout
        assert "alert.raised.v2          threshold -> climate, sink" in chart.stdout
        # ingest reads requests too: a profile actuator's next state report is caused by the latest one
        assert "actuation.requested.v1   climate -> ingest, sink" in chart.stdout

        # A device process killed without a goodbye leaves its last will: a stored device.offline.v1.
        devices.send_signal(signal.SIGKILL)
        devices.wait()
        wait_for(lambda: query(stack, "SELECT * FROM events "
                                      "WHERE type = 'device.offline.v1' AND subject = 'lab-fan-1'"),
                 60, "device.offline.v1 from the last will")

    # What the broker carried matches what InfluxDB stored for the alert.
    carried = [json.loads(m.payload) for m in observer.on("events/alert.raised.v1/")]
    assert alert["id"] in {event["id"] for event in carried}
