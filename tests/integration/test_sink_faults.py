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
