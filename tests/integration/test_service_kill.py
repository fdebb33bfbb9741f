"""Ingest killed with SIGKILL mid-stream and restarted, under steady device telemetry, with an accounting of
every reading: published, acknowledged by the broker, stored in InfluxDB (by the device's `seq`, counted with
plain /query), lost, duplicated. (The sink's SIGKILL is in test_sink_faults.py, each reactor's in
test_reactor_restart.py.)

Ingest acknowledges a telemetry message only once the broker has its `reading.v1`; what it had not
acknowledged is delivered again after the restart, and maps to the same event id (derived from the
device's time stamp and payload), so the sink overwrites the same point."""
from __future__ import annotations

import asyncio
import signal

import pytest

from tests.helpers import MqttObserver, async_wait_for
from tests.integration.faults import SteadyLoad, accounting, budget, sink_env, start_service, stored_ids

pytestmark = pytest.mark.integration


async def test_ingest_killed_with_sigkill_mid_stream_loses_and_duplicates_nothing(fresh_stack, services, tmp_path):
    stack, device = fresh_stack, "dev-a"
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "ingest-kill-observer") as observer:
        observer.subscribe("choreo/services/#")
        start_service(services, observer, "sink", sink_env(stack, tmp_path))
        ingest_env = {**stack.env("ingest"), **budget(device, 400)}
        ingest = start_service(services, observer, "ingest", ingest_env)
        load = SteadyLoad(stack, device, rate=400, device=True)

        async def kill_and_restart() -> None:
            nonlocal ingest
            await asyncio.sleep(2)
            ingest.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(ingest.wait) == -signal.SIGKILL
            await asyncio.sleep(1)  # telemetry queues in ingest's session meanwhile
            ingest = await asyncio.to_thread(start_service, services, observer, "ingest", ingest_env)

        await load.run(seconds=7, during=kill_and_restart)
    await async_wait_for(lambda: load.published[-1] in stored_ids(stack, device, "sequence"), 30,
                         "the last reading in InfluxDB")
    result = accounting(load, stored_ids(stack, device, "sequence"))
    print("\ningest SIGKILL accounting:", result)
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["acknowledged"] == result["published"] == result["stored"]
    assert ingest.poll() is None  # the restarted ingest
