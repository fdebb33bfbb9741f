"""The alert.raised v1 -> v2 migration on the real broker, one service restarted at a time mid-stream.

The steps of docs/evolving-events.md, each deployed alone while readings keep coming:
  0. threshold emits v1,        climate handles v1            (before)
  1. threshold emits v1 and v2  (the producer's window opens; climate, still on v1, keeps working)
  2. climate handles v2         (v1 facts queued for it while it restarted reach it upcast)
  3. threshold emits v2 only    (the window closes: nobody consumes v1 except by upcasting)
Each restart leaves a backlog: half of a batch is published while the service is down.

Checked with an independent client (paho) and plain InfluxDB queries: every hot reading raised one
alert and every cool one cleared it (no fact lost), each alert and clear asked the fan exactly once,
climate handled each alert once though it arrived in two versions, and the sink stored every version.
"""
from __future__ import annotations

import ast
import functools
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from gateway.events import Measurement, ReadingV1, new_event
from gateway.topics import event_topic
from tests.helpers import MqttObserver, influx_query, wait_for

pytestmark = pytest.mark.integration

SUBJECT = "lab-temperature-1"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
CYCLES_PER_STEP = 6  # each a hot reading (raise) then a cool one (clear)
SETTINGS = {"CHOREO_REACTORS_THRESHOLD_HIGH": "28", "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "0",
            "CHOREO_INFLUX_FLUSH_INTERVAL": "0.2"}
THRESHOLD_STEPS = ["v1", "v1,v2", "v1,v2", "v2"]  # CHOREO_REACTORS_THRESHOLD_ALERT_VERSIONS at steps 0..3
CLIMATE_STEPS = ["v1", "v1", "v2", "v2"]  # CHOREO_REACTORS_CLIMATE_ALERT_VERSION


@functools.cache  # the same events each time it is asked
def batch(step: int) -> list:
    """The readings of one step: hot, cool, hot, cool, ... one second apart in event time."""
    first = step * CYCLES_PER_STEP * 2
    return [new_event(ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=value)],
                                site="hq", room="lab"),
                      source=f"device/{SUBJECT}", subject=SUBJECT, sequence=n + 1, time=START + timedelta(seconds=n))
            for n, value in ((n, 30.0 if n % 2 == 0 else 20.0) for n in range(first, first + CYCLES_PER_STEP * 2))]


class Migration:
    def __init__(self, stack, services, observer: MqttObserver, env: dict[str, str]) -> None:
        self.stack, self.services, self.observer, self.env = stack, services, observer, env
        self.runs: Counter[str] = Counter()

    def start(self, name: str, step: int) -> None:
        settings = {"threshold": {"CHOREO_REACTORS_THRESHOLD_ALERT_VERSIONS": THRESHOLD_STEPS[step]},
                    "climate": {"CHOREO_REACTORS_CLIMATE_ALERT_VERSION": CLIMATE_STEPS[step]}}.get(name, {})
        command = ["sink"] if name == "sink" else ["reactor", name]
        seen = len(self.observer.on(f"choreo/services/{name}"))
        self.services.start(name, command, {**self.stack.env(name), **self.env, **settings})
        self.runs[name] += 1
        wait_for(lambda: any(json.loads(m.payload)["status"] == "online"
                             for m in self.observer.on(f"choreo/services/{name}")[seen:]),
                 30, f"{name} online (log: {self.services.log_dir / f'{name}.log'})")

    def stop(self, name: str) -> None:
        process = self.services.processes[name]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    def publish(self, readings: list) -> None:
        self.observer.publish_all([(event_topic(e.type, e.subject), e.to_json()) for e in readings])

    def facts(self, event_type: str) -> dict[str, dict]:
        """The facts of a type the broker carried, by id (a fact published again is the same fact)."""
        return {fact["id"]: fact for fact in (json.loads(m.payload) for m in self.observer.on(f"events/{event_type}/"))}

    def asked(self) -> int:
        return len(self.facts("actuation.requested.v1"))

    def restart_mid_stream(self, name: str, step: int) -> None:
        """Half the step's readings before the restart, half while the service is down."""
        readings = batch(step)
        half = len(readings) // 2
        self.publish(readings[:half])
        wait_for(lambda: self.asked() >= step * CYCLES_PER_STEP * 2 + half, 30, f"the facts before step {step}")
        self.stop(name)
        self.publish(readings[half:])
        self.start(name, step)


def consumed_by(log: str, name: str) -> Counter[str]:
    """What each run of a reactor counted, from the `NAME stopped: {counts} {transport}` line it logs."""
    total: Counter[str] = Counter()
    for line in re.findall(rf"{name} stopped: (\{{[^}}]*\}})", log):
        total.update(ast.literal_eval(line))
    return total


def choreo(stack, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "gateway.cli", *args], env={**os.environ, **stack.env("monitor")},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_alert_raised_v1_to_v2_one_service_at_a_time_loses_and_repeats_nothing(
        fresh_stack, services, fleet_file, tmp_path):
    stack = fresh_stack
    env = {**SETTINGS, "CHOREO_FLEET_FILE": str(fleet_file), "CHOREO_REACTORS_STATE_DIR": str(tmp_path / "state")}
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "migration-observer") as observer:
        observer.subscribe("choreo/services/+")
        observer.subscribe("events/#")
        migration = Migration(stack, services, observer, env)
        for name in ("sink", "climate", "threshold"):
            migration.start(name, 0)

        migration.publish(batch(0))
        migration.restart_mid_stream("threshold", 1)  # step 1: the producer emits both versions
        migration.restart_mid_stream("climate", 2)  # step 2: the consumer handles v2
        window = choreo(stack, "map")  # the window: both versions, who consumes each
        # what threshold, climate and the sink announce on the broker is what is recorded
        assert "and what 3 services announce on the broker" in choreo(stack, "contract", "check", "--broker")
        migration.restart_mid_stream("threshold", 3)  # step 3: the producer emits v2 only
        expected = 4 * CYCLES_PER_STEP * 2  # one actuation request per raise and per clear
        wait_for(lambda: migration.asked() >= expected, 30, f"{expected} actuation requests")
        for name in ("threshold", "climate"):
            migration.stop(name)

    readings = [event for step in range(4) for event in batch(step)]
    v1, v2 = migration.facts("alert.raised.v1"), migration.facts("alert.raised.v2")
    cleared = migration.facts("alert.cleared.v1")
    raised = {**v1, **v2}
    # no fact lost: every hot reading raised one alert, every cool one cleared it
    assert sorted(a["causationid"] for a in raised.values()) == sorted(r.id for r in readings[::2])
    assert sorted(c["causationid"] for c in cleared.values()) == sorted(r.id for r in readings[1::2])
    # both versions of one alert are one fact: the same id, cause and correlation, the data of its version
    both = set(v1) & set(v2)
    assert both and all(v1[i]["causationid"] == v2[i]["causationid"] and v1[i]["sequence"] == v2[i]["sequence"]
                        and set(v2[i]["data"]) - set(v1[i]["data"]) == {"severity", "rule"} for i in both)
    assert set(v1) - set(v2) and set(v2) - set(v1)  # before the window only v1, after it only v2
    # every consumer kept working: each alert and clear asked the fan once, in turn on and off
    requests = sorted(migration.facts("actuation.requested.v1").values(), key=lambda f: f["time"])
    by_cause = defaultdict(list)
    for request in requests:
        by_cause[request["causationid"]].append(request)
    assert sorted(by_cause) == sorted([*raised, *cleared]) and all(len(r) == 1 for r in by_cause.values())
    assert [r["data"]["state"] for r in requests] == ["on", "off"] * (len(requests) // 2)
    # none handled twice: climate consumed each alert and clear once, over all its runs
    counts = consumed_by(services.log("climate"), "climate")
    assert counts["consumed"] == len(raised) + len(cleared), counts
    assert counts["upcast:alert.raised.v2"] > 0  # v1 facts queued across the consumer's restart, handled as v2
    # the map of the window: both versions, climate taking v1 upcast while it was still produced
    assert re.search(r"alert\.raised\.v1 +threshold -> climate \(as v2\), sink", window), window
    assert re.search(r"alert\.raised\.v2 +threshold -> climate, sink", window), window
    # the sink stored every version: each as the broker carried it
    def stored(event_type: str) -> set[str]:
        return {row["id"] for row in influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password,
                                                  f"SELECT id FROM events WHERE type = '{event_type}'")}
    wait_for(lambda: stored("alert.raised.v1") == set(v1) and stored("alert.raised.v2") == set(v2), 30,
             "every version stored")
    history = json.loads(choreo(stack, "history", "--type", "alert.raised", "--since", "2h", "--format", "json"))
    assert Counter(e["type"] for e in history) == {"alert.raised.v1": len(v1), "alert.raised.v2": len(v2)}
