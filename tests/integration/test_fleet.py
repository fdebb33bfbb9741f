"""The simulated fleet on a real broker: own connections, births and wills, and each fault mode as published."""
from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime

import pytest

from devices.faults import MALFORMED
from devices.fleet import FleetRunner
from gateway.fleet import Fleet
from gateway.localstack import LocalStack
from gateway.settings import load_settings
from tests.helpers import MqttObserver, async_wait_for

pytestmark = pytest.mark.integration

FAULTY = """
seed = 5
interval = 0.1
[[sites]]
id = "t"
[[sites.rooms]]
id = "dup"
devices = [{ kind = "temperature", faults = { duplicate = 1.0 } }]
[[sites.rooms]]
id = "ooo"
devices = [{ kind = "temperature", faults = { out_of_order = 0.3 } }]
[[sites.rooms]]
id = "bad"
devices = [{ kind = "co2", faults = { malformed = 1.0 } }]
[[sites.rooms]]
id = "drop"
devices = [{ kind = "door", faults = { dropout = 0.2, dropout_seconds = 0.5 } }]
[[sites.rooms]]
id = "skew"
devices = [{ kind = "temperature", faults = { clock_skew = 1.0, clock_skew_seconds = 3600, stuck = 1.0 } }]
[[sites.rooms]]
id = "ok"
devices = [{ kind = "power" }, { kind = "fan" }]
"""


def seqs(observer: MqttObserver, device: str) -> list[int]:
    return [json.loads(m.payload)["seq"] for m in observer.on(f"devices/{device}/telemetry")]


async def test_each_fault_mode_reaches_the_broker_as_specified(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text(FAULTY)
    fleet = Fleet.load(path)
    ids = [spec.id for spec in fleet.devices()]
    with LocalStack(tmp_path / "stack", ids) as stack:
        settings = load_settings(stack.env("devices"))
        status = io.StringIO()
        runner = FleetRunner(fleet, settings, status_stream=status)
        with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "fleet-observer") as observer:
            observer.subscribe("devices/#")
            stop = asyncio.Event()
            running = asyncio.create_task(runner.run(stop))

            def enough() -> bool:
                statuses = [m.payload for m in observer.on("devices/drop-door-1/status")]
                return (len(seqs(observer, "dup-temperature-1")) >= 20
                        and len(seqs(observer, "ooo-temperature-1")) >= 30
                        and len(observer.on("devices/bad-co2-1/telemetry")) >= 5
                        and b"offline" in statuses and statuses[-1] == b"online" and statuses.count(b"online") >= 2)

            await async_wait_for(enough, 60, "every fault mode on the broker")
            stop.set()
            await asyncio.wait_for(running, 30)

            duplicated = seqs(observer, "dup-temperature-1")
            assert duplicated[0::2] == duplicated[1::2]  # every message twice, same seq
            reordered = seqs(observer, "ooo-temperature-1")
            assert reordered != sorted(reordered) and sorted(reordered) == list(range(1, len(reordered) + 1))
            assert {m.payload for m in observer.on("devices/bad-co2-1/telemetry")} <= set(MALFORMED)
            assert seqs(observer, "ok-power-1") == sorted(seqs(observer, "ok-power-1"))
            skewed = [json.loads(m.payload) for m in observer.on("devices/skew-temperature-1/telemetry")]
            assert len({(r["temperature"], r["humidity"]) for r in skewed}) == 1  # stuck at its first values
            ahead = datetime.fromisoformat(skewed[-1]["ts"]) - datetime.now(UTC)
            assert 3500 < ahead.total_seconds() < 3610
            [fan_report] = [json.loads(m.payload) for m in observer.on("devices/ok-fan-1/telemetry")]
            assert fan_report["state"] == "off"  # an actuator reports its state once at start

            def all_said_goodbye() -> bool:  # a clean stop publishes a retained offline
                final = {m.topic: m.payload for m in observer.on("devices/") if m.topic.endswith("/status")}
                return len(final) == 7 and set(final.values()) == {b"offline"}

            await async_wait_for(all_said_goodbye, 10, "every device to say offline")

    summary = status.getvalue().splitlines()[-1]
    assert summary.startswith("fleet summary: 7 devices") and "duplicate" in summary and "dropout" in summary
