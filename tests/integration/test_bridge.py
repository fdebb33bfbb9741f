"""The actuation bridge end to end: a request for a profile actuator reaches its native command topic
in the convention's own payload, the simulated device obeys, and its state report becomes
`actuator.changed.v1` caused by the request, which `choreo trace` shows as one chain.

Every service is its own OS process on a real Mosquitto and InfluxDB; what reached the broker is
checked with paho-mqtt and what was stored with plain HTTP queries.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.declarations import declarations
from gateway.events import ActuationRequestedV1, new_event
from gateway.fleet import Fleet
from gateway.localstack import LocalStack
from gateway.settings import load_settings
from tests.helpers import MqttObserver, influx_query, wait_for

pytestmark = pytest.mark.integration

FLEET = """
seed = 5
interval = 0.5
[[sites]]
id = "hq"
[[sites.rooms]]
id = "lab"
devices = [
  { kind = "fan", profile = "tasmota", native = "sonoff-t" },
  { kind = "fan", profile = "zigbee2mqtt", native = "fan_z" },
  { kind = "heater", profile = "shelly", native = "shellyplus1pm-t" },
  { kind = "heater", profile = "homie", native = "heater-h" },
  { kind = "valve" },
]
"""
# subject -> (the native command topic, what its payload must say)
EXPECTED = {
    "lab-fan-1": ("cmnd/sonoff-t/POWER", lambda payload: payload.upper() == b"ON"),
    "lab-fan-2": ("zigbee2mqtt/fan_z/set", lambda payload: json.loads(payload) == {"state": "ON"}),
    "lab-heater-1": ("shellyplus1pm-t/rpc", lambda payload: (json.loads(payload)["method"], json.loads(payload)[
        "params"]) == ("Switch.Set", {"id": 0, "on": True})),
    "lab-heater-2": ("homie/5/heater-h/switch/state/set", lambda payload: payload == b"true"),
}


def test_requests_for_profile_actuators_become_native_commands_and_close_the_chain(tmp_path: Path, services):
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(FLEET)
    settings = {"CHOREO_FLEET_FILE": str(fleet_file), "CHOREO_INFLUX_FLUSH_INTERVAL": "0.2",
                "CHOREO_SINK_SPOOL_DIR": str(tmp_path / "spool")}
    declared = declarations(load_settings(settings))
    with LocalStack(tmp_path / "stack", Fleet.load(fleet_file).accounts(), declared) as stack, \
            MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "bridge-observer") as observer:
        for topic_filter in ("events/#", "cmnd/#", "zigbee2mqtt/#", "shellyplus1pm-t/#", "homie/5/#",
                             "choreo/services/#"):
            observer.subscribe(topic_filter)
        for name, command in (("sink", ["sink"]), ("bridge", ["bridge"]), ("ingest", ["ingest"])):
            services.start(name, command, {**stack.env(name), **settings})
            wait_for(lambda name=name: any(m["status"] == "online" for m in observer.manifests(name)), 30,
                     f"{name} online (log: {services.log_dir / (name + '.log')})")
        services.start("devices", ["devices"], {**stack.env("devices"), **settings})
        wait_for(lambda: len({m.topic for m in observer.on("events/actuator.changed.v1/")}) >= 4, 30,
                 "every actuator's state reported at connect")

        requests = {subject: new_event(ActuationRequestedV1(state="on", reason="bridge test"), source="reactor/test",
                                       subject=subject) for subject in (*EXPECTED, "lab-valve-1", "nobody-1")}
        observer.publish_all([(f"events/actuation.requested.v1/{subject}", event.to_json())
                              for subject, event in requests.items()])

        for subject, (topic, says) in EXPECTED.items():
            wait_for(lambda topic=topic, says=says: any(says(m.payload) for m in observer.on(topic)), 30,
                     f"the native command for {subject} on {topic}")

        def changed_by(request_id: str) -> list[dict]:
            changes = [json.loads(m.payload) for m in observer.on("events/actuator.changed.v1/")]
            return [c for c in changes if c.get("causationid") == request_id and c["data"].get("state", "on") == "on"]

        for subject in EXPECTED:
            [change] = wait_for(lambda subject=subject: changed_by(requests[subject].id), 30,
                                f"{subject}'s actuator.changed.v1 caused by its request")
            assert change["subject"] == subject and change["correlationid"] == requests[subject].correlationid
        # the native valve read its request itself; the bridge sent nothing for it, nor for an unknown device
        assert changed_by(requests["lab-valve-1"].id)
        assert not observer.on("cmnd/nobody-1") and not observer.on("zigbee2mqtt/nobody-1")

        # `choreo trace` prints the chain from InfluxDB: the request, then the change it caused.
        shelly = requests["lab-heater-1"]
        wait_for(lambda: influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password,
                                      f"SELECT * FROM events WHERE causationid = '{shelly.id}'"), 30,
                 "the stored actuator.changed.v1")
        traced = subprocess.run([sys.executable, "-m", "gateway.cli", "trace", shelly.correlationid],
                                env={**os.environ, **stack.env("monitor")}, capture_output=True, text=True, timeout=60)
        assert traced.returncode == 0, traced.stderr
        steps = [line for line in traced.stdout.splitlines() if ".v1" in line]
        assert "actuation.requested.v1" in steps[0] and "actuator.changed.v1" in steps[1], traced.stdout
        assert "lab-heater-1" in steps[1]

        # the bridge counted what it could not send
        counters = wait_for(lambda: [json.loads(m.payload)["counters"] for m in observer.on(
            "choreo/services/bridge/counters") if json.loads(m.payload)["counters"].get("unknown_target")], 30,
            "the bridge's counters")
        assert counters[-1]["native_target"] == 1 and counters[-1]["commands"] == 4
