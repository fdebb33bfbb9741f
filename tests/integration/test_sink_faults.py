"""The sink as a process under faults, with an accounting of every event: published and acknowledged
by the broker, stored in InfluxDB (counted with plain /query), lost, duplicated."""
from __future__ import annotations

import asyncio
import signal
import uuid

import pytest

from tests.helpers import MqttObserver, async_wait_for
from tests.integration.faults import SteadyLoad, accounting, sink_env, start_sink, stored_ids

pytestmark = pytest.mark.integration


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


def sink_counts(log: str) -> dict[str, int]:
    """The counts of the sink's last status line ("sink: received N, written N, spooled N, ...")."""
    final = [line for line in log.splitlines() if "sink: received" in line][-1].split("sink: ", 1)[1]
    return {name: int(value.replace(",", "")) for name, value in
            (part.strip().rsplit(" ", 1) for part in final.split(" / ")[0].split(", ")[:7])}


async def test_influxdb_slow_for_16_seconds_under_steady_load(fresh_stack, services, tmp_path):
    """influxd stopped (SIGSTOP) 0.7 s of every second for 16 s, under 300 events/s; the sink's write
    timeout (0.3 s) is shorter than a pause, so some writes time out, possibly after InfluxDB took them."""
    stack, subject = fresh_stack, f"slow-{uuid.uuid4().hex[:6]}"
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "slow-observer") as observer:
        observer.subscribe("choreo/services/#")
        sink = start_sink(stack, services, observer, {**sink_env(stack, tmp_path), "CHOREO_INFLUX_TIMEOUT": "0.3"})
    load = SteadyLoad(stack, subject, rate=300)

    async def slow() -> None:
        await asyncio.sleep(3)
        influxd = stack.influxdb.process
        try:
            for _ in range(16):
                influxd.send_signal(signal.SIGSTOP)
                await asyncio.sleep(0.7)
                influxd.send_signal(signal.SIGCONT)
                await asyncio.sleep(0.3)
        finally:
            influxd.send_signal(signal.SIGCONT)

    await load.run(seconds=25, during=slow)
    await async_wait_for(lambda: len(set(stored_ids(stack, subject))) >= len(load.acknowledged), 60,
                         "every acknowledged event in InfluxDB")
    result = accounting(load, stored_ids(stack, subject))
    assert sink.poll() is None  # it never crashed
    services.stop_all()  # the sink logs its final counts as it stops
    counts = sink_counts(services.log("sink"))
    print("\nslow InfluxDB accounting:", result, "\nsink:", counts)
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["acknowledged"] == result["published"] == result["stored"]
    assert counts["retried"] > 0 and counts["spooled"] > 0  # writes timed out and the spool took over
    assert counts["replayed"] == counts["spooled"] and counts["written"] + counts["spooled"] == counts["received"]
    assert sink.returncode == 0
