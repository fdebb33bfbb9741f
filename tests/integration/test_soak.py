"""A soak: the whole choreography at a steady rate, with every process's memory sampled.

`make test` runs it for 45 s; the full 10-minute run is
`make test PYTEST_ARGS="tests/integration/test_soak.py --soak-seconds 600"`.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gateway.declarations import declarations
from gateway.demo import REPO, consumer_commands
from gateway.fleet import Fleet
from gateway.localstack import LocalStack
from gateway.settings import load_settings
from tests.helpers import MqttObserver, influx_query, wait_for

pytestmark = pytest.mark.integration

SETTINGS = {"CHOREO_REACTORS_THRESHOLD_HIGH": "28", "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "2",
            "CHOREO_INFLUX_FLUSH_INTERVAL": "0.2",
            "CHOREO_REACTORS_DOOR_LIMIT_SECONDS": "5", "CHOREO_REACTORS_AVAILABILITY_SILENCE_SECONDS": "10",
            "CHOREO_REACTORS_ENERGY_PERIOD_SECONDS": "10"}
INTERVAL = 0.05  # each of the demo fleet's 16 devices reports 20 times a second
GROWTH_ALLOWED = 1.10  # the last third of the run may peak at most 10% (plus 8 MiB) above the middle third
SLACK_MIB = 8.0


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


@pytest.fixture
def soak_fleet(tmp_path: Path) -> Path:
    demo = (REPO / "devices" / "fleets" / "demo.toml").read_text()
    path = tmp_path / "soak.toml"
    path.write_text(demo.replace("interval = 1.0", f"interval = {INTERVAL}", 1))
    return path


def test_memory_stays_flat_and_every_reading_is_stored(tmp_path, services, soak_fleet, request):
    seconds = request.config.getoption("--soak-seconds")
    fleet_file = Fleet.load(soak_fleet)
    devices = [spec.id for spec in fleet_file.devices()]
    settings = {**SETTINGS, "CHOREO_FLEET_FILE": str(soak_fleet), "CHOREO_REACTORS_STATE_DIR": str(tmp_path / "state"),
                "CHOREO_SINK_SPOOL_DIR": str(tmp_path / "spool")}
    declared = declarations(load_settings(settings))  # the bridge may write the soak fleet's command topics
    with LocalStack(tmp_path / "stack", fleet_file.accounts(), declared) as stack, \
            MqttObserver(stack.broker.port, "monitor", stack.credentials.mqtt["monitor"], "soak-observer") as observer:
        observer.subscribe("choreo/services/+")
        observer.subscribe("events/reading.v1/+")
        for name, command in consumer_commands(load_settings(settings)):
            services.start(name, command, {**stack.env(name), **settings})
            wait_for(lambda name=name: any(json.loads(m.payload)["status"] == "online"
                                           for m in observer.on(f"choreo/services/{name}")), 30, f"{name} online")
        fleet = services.start("devices", ["devices"], {**stack.env("devices"), **settings})

        samples = {name: [] for name in services.processes}
        for _ in range(int(seconds)):
            for name, process in services.processes.items():
                samples[name].append(rss_mib(process.pid))
            with pytest.raises(subprocess.TimeoutExpired):  # the fleet keeps running; this also paces the sampling
                fleet.wait(timeout=1.0)
        fleet.terminate()
        fleet.wait(20)

        crashed = [name for name, process in services.processes.items()
                   if name != "devices" and process.poll() is not None]
        assert not crashed, f"stopped during the soak: {crashed}"
        published = {json.loads(m.payload)["id"] for m in observer.on("events/reading.v1/")}
        assert len(published) > seconds * len(devices)  # the load really ran

        def stored() -> int:
            rows = influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password,
                                "SELECT COUNT(\"id\") FROM readings WHERE type = 'reading.v1'")
            return rows[0]["count"] if rows else 0

        wait_for(lambda: stored() == len(published), 60, f"{len(published)} readings stored")

    third = len(next(iter(samples.values()))) // 3
    for name, rss in samples.items():
        middle, last = max(rss[third:2 * third]), max(rss[2 * third:])
        print(f"{name}: RSS {rss[0]:.0f} -> {rss[-1]:.0f} MiB, "
              f"middle-third peak {middle:.0f}, last-third peak {last:.0f}")
        assert last <= middle * GROWTH_ALLOWED + SLACK_MIB, f"{name} grew from {middle:.0f} to {last:.0f} MiB"
