"""The sink as a process under faults, with an accounting of every event: published and acknowledged
by the broker, stored in InfluxDB (counted with plain /query), lost, duplicated."""
from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid

import pytest

from gateway.events import Measurement, ReadingV1, new_event
from gateway.topics import event_topic
from gateway.transport import ClientConfig, Message, MqttTransport
from tests.helpers import MqttObserver, async_wait_for, influx_query, wait_for

pytestmark = pytest.mark.integration


def sink_env(stack, tmp_path) -> dict[str, str]:
    return {**stack.env("sink"), "CHOREO_SINK_SPOOL_DIR": str(tmp_path / "spool"),
            "CHOREO_INFLUX_FLUSH_INTERVAL": "0.2", "CHOREO_INFLUX_BATCH_SIZE": "1000"}


def start_sink(stack, services, observer: MqttObserver, env: dict):
    seen = len(observer.on("choreo/services/sink"))
    process = services.start("sink", ["sink"], env)
    wait_for(lambda: any(json.loads(m.payload)["status"] == "online" for m in observer.on("choreo/services/sink")[seen:]),
             30, "the sink online")
    return process


class SteadyLoad:
    """Publishes readings at a fixed rate with QoS 1 and keeps the ids the broker acknowledged."""

    def __init__(self, stack, subject: str, rate: float) -> None:
        self.config = ClientConfig(f"load-{uuid.uuid4().hex[:6]}", port=stack.broker.port, username="admin",
                                   password=stack.credentials.mqtt["admin"])
        self.subject = subject
        self.interval = 1 / rate
        self.published: list[str] = []
        self.acknowledged: list[str] = []

    async def run(self, seconds: float, during=None) -> None:
        async with MqttTransport(self.config) as transport:
            started = time.monotonic()
            hook = asyncio.ensure_future(during()) if during else None
            n = 0
            while time.monotonic() - started < seconds:
                n += 1
                data = ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=float(n))])
                event = new_event(data, source=f"device/{self.subject}", subject=self.subject, sequence=n)
                future = transport.publish(Message(event_topic(event.type, event.subject), event.to_json()))
                future.add_done_callback(lambda f, i=event.id: f.exception() or self.acknowledged.append(i))
                self.published.append(event.id)
                await asyncio.sleep(max(0.0, started + n * self.interval - time.monotonic()))
            assert await transport.flush(timeout=30)
            if hook:
                await hook


def stored_ids(stack, subject: str) -> list[str]:
    rows = influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password,
                        f"SELECT id FROM events WHERE subject = '{subject}' AND time > now() - 1h")
    return [row["id"] for row in rows]


def accounting(load: SteadyLoad, stored: list[str]) -> dict[str, int]:
    return {"published": len(load.published), "acknowledged": len(load.acknowledged), "stored": len(set(stored)),
            "lost": len(set(load.acknowledged) - set(stored)), "duplicated": len(stored) - len(set(stored))}


async def test_influxdb_down_for_30_seconds_under_steady_load(fresh_stack, services, tmp_path):
    stack, subject = fresh_stack, f"outage-{uuid.uuid4().hex[:6]}"
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "outage-observer") as observer:
        observer.subscribe("choreo/services/#")
        start_sink(stack, services, observer, sink_env(stack, tmp_path))
    load = SteadyLoad(stack, subject, rate=200)

    async def outage() -> None:
        await asyncio.sleep(3)
        await asyncio.to_thread(stack.influxdb.stop)
        await asyncio.sleep(30)
        await asyncio.to_thread(stack.influxdb.start)

    await load.run(seconds=40, during=outage)
    await async_wait_for(lambda: len(set(stored_ids(stack, subject))) >= len(load.acknowledged), 60,
                         "every acknowledged event in InfluxDB")
    result = accounting(load, stored_ids(stack, subject))
    print("\noutage accounting:", result)
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["acknowledged"] == result["published"] == result["stored"]
    services.stop_all()  # the sink logs its final counts as it stops
    log = services.log("sink")
    assert "unreachable" in log  # the outage really happened to the sink
    final = [line for line in log.splitlines() if "sink: received" in line][-1]
    spooled = int(final.split("spooled ")[1].split(",")[0])
    replayed = int(final.split("replayed ")[1].split(",")[0])
    assert spooled > 1000 and replayed == spooled  # the spool carried the outage


async def test_sink_killed_with_sigkill_mid_stream_loses_and_duplicates_nothing(fresh_stack, services, tmp_path):
    stack, subject = fresh_stack, f"kill-{uuid.uuid4().hex[:6]}"
    env = sink_env(stack, tmp_path)
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "kill-observer") as observer:
        observer.subscribe("choreo/services/#")
        sink = start_sink(stack, services, observer, env)
        load = SteadyLoad(stack, subject, rate=1000)

        async def kill_and_restart() -> None:
            await asyncio.sleep(2)
            sink.send_signal(signal.SIGKILL)
            await asyncio.to_thread(sink.wait)
            await asyncio.sleep(1)
            await asyncio.to_thread(start_sink, stack, services, observer, env)

        await load.run(seconds=6, during=kill_and_restart)
    await async_wait_for(lambda: len(set(stored_ids(stack, subject))) >= len(load.acknowledged), 60,
                         "every acknowledged event in InfluxDB")
    result = accounting(load, stored_ids(stack, subject))
    print("\nSIGKILL accounting:", result)
    assert result["lost"] == 0 and result["duplicated"] == 0 and result["stored"] == result["published"]
