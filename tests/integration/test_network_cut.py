"""The network between the services and the broker cut, or silently partitioned, mid-stream, with an
accounting of every device reading: published, acknowledged by the broker, stored in InfluxDB (by the
device's `seq`, counted with plain /query), lost, duplicated.

Ingest and the sink reach the broker through a TCP proxy under the test's control (tests/proxy.py);
the devices' load goes to the broker directly, so it keeps flowing while the services are cut off.
"""
from __future__ import annotations

import asyncio

import pytest

from tests.helpers import MqttObserver, async_wait_for
from tests.integration.faults import SteadyLoad, accounting, budget, sink_env, start_service, stored_ids
from tests.proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fault, seconds", [("cut", 4), ("blackhole", 15)])
async def test_network_fault_between_services_and_broker_loses_and_duplicates_nothing(
        fresh_stack, services, tmp_path, fault, seconds):
    stack, device = fresh_stack, "dev-a"
    async with TcpProxy(stack.broker.port) as proxy:
        via_proxy = {"CHOREO_MQTT_PORT": str(proxy.port), "CHOREO_MQTT_KEEPALIVE": "5"}
        with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "network-observer") as observer:
            observer.subscribe("choreo/services/#")
            # in a thread: the proxy runs on this event loop
            sink = await asyncio.to_thread(start_service, services, observer, "sink",
                                           {**sink_env(stack, tmp_path), **via_proxy})
            ingest = await asyncio.to_thread(start_service, services, observer, "ingest",
                                             {**stack.env("ingest"), **via_proxy, **budget(device, 300)})
        load = SteadyLoad(stack, device, rate=300, device=True)

        async def network_fault() -> None:
            await asyncio.sleep(3)
            getattr(proxy, fault)()
            await asyncio.sleep(seconds)
            proxy.restore()

        await load.run(seconds=seconds + 8, during=network_fault)
        await async_wait_for(lambda: load.published[-1] in stored_ids(stack, device, "sequence"), 30,
                             "the last reading in InfluxDB")
        result = accounting(load, stored_ids(stack, device, "sequence"))
        print(f"\nnetwork {fault} for {seconds} s, accounting:", result)
        assert result["lost"] == 0 and result["duplicated"] == 0
        assert result["acknowledged"] == result["published"] == result["stored"]
        assert proxy.connections >= 4  # both services connected again through the proxy
        assert sink.poll() is None and ingest.poll() is None
        await asyncio.to_thread(services.stop_all)  # while the proxy still forwards: a clean stop
    for name, process in (("sink", sink), ("ingest", ingest)):
        assert process.returncode == 0 and "reconnected to broker (session kept)" in services.log(name)
