"""The broker killed with SIGKILL mid-stream and restarted on the same port with the same state folder,
with an accounting of every event from a QoS 1 publisher through the broker and the sink into InfluxDB.

Mosquitto is not a durable log: it keeps its state in memory and writes all of it to disk every
2 s (`autosave_interval` in mosquitto/conf.d/choreo.conf). What a SIGKILL can cost is therefore
what it had not saved and not yet handed on: the first test shows that a sink keeping up loses
nothing, the second what a sink that is away loses (the limit docs/guarantees.md states).
"""
from __future__ import annotations

import asyncio
import signal
import time
import uuid

import pytest

from tests.helpers import MqttObserver, async_wait_for, wait_for
from tests.integration.faults import SteadyLoad, accounting, sink_env, start_sink, stored_ids

pytestmark = pytest.mark.integration


def last_save(stack) -> float:
    """When the broker last wrote its state to disk (0 if never)."""
    path = stack.broker.state_dir / "mosquitto.db"
    return path.stat().st_mtime if path.exists() else 0.0


def start_saved_sink(stack, services, tmp_path):
    """The sink online, and its session saved by the broker. A broker killed with SIGKILL forgets a
    session younger than its last save: the sink subscribes again, but what was published before
    it did is lost."""
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "broker-kill-observer") as observer:
        observer.subscribe("choreo/services/#")
        sink = start_sink(stack, services, observer, sink_env(stack, tmp_path))
    online = time.time()
    wait_for(lambda: last_save(stack) > online, 10, "the broker saving the sink's session")
    return sink


async def kill_broker(stack, after: float, down: float = 1.0) -> tuple[float, float]:
    """SIGKILL the broker after `after` s, restart it `down` s later on the same port and state folder;
    returns when it last saved and when it died (wall clock)."""
    await asyncio.sleep(after)
    await asyncio.to_thread(stack.broker.stop, signal.SIGKILL)
    saved, killed = last_save(stack), time.time()
    await asyncio.sleep(down)
    await asyncio.to_thread(stack.broker.start)
    return saved, killed


async def test_broker_sigkill_mid_stream_loses_and_duplicates_nothing_while_the_sink_keeps_up(
        fresh_stack, services, tmp_path):
    stack, subject = fresh_stack, f"broker-{uuid.uuid4().hex[:6]}"
    sink = start_saved_sink(stack, services, tmp_path)
    load = SteadyLoad(stack, subject, rate=500)
    await load.run(seconds=10, during=lambda: kill_broker(stack, after=3))
    await async_wait_for(lambda: load.published[-1] in stored_ids(stack, subject), 30, "the last event in InfluxDB")
    result = accounting(load, stored_ids(stack, subject))
    print("\nbroker SIGKILL accounting:", result)
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["acknowledged"] == result["published"] == result["stored"]
    assert sink.poll() is None and "reconnected to broker (session kept)" in services.log("sink")


async def test_broker_sigkill_loses_at_most_what_it_queued_since_its_last_save(fresh_stack, services, tmp_path):
    """The sink is away, so the broker queues the stream for it; killed, it keeps what it had saved."""
    stack, subject = fresh_stack, f"backlog-{uuid.uuid4().hex[:6]}"
    sink = start_saved_sink(stack, services, tmp_path)
    sink.terminate()
    sink.wait(20)
    load = SteadyLoad(stack, subject, rate=500)
    kill = asyncio.ensure_future(kill_broker(stack, after=4))
    await load.run(seconds=6, during=lambda: kill)
    saved, killed = kill.result()
    services.start("sink", ["sink"], sink_env(stack, tmp_path))
    await async_wait_for(lambda: load.published[-1] in stored_ids(stack, subject), 30, "the last event in InfluxDB")
    stored = stored_ids(stack, subject)
    result = accounting(load, stored)
    unsaved = [i for i, at in load.acknowledged.items() if saved < at <= killed]
    print(f"\nbroker SIGKILL with the sink away, accounting: {result}; the broker last saved {killed - saved:.2f} s "
          f"before it was killed, {len(unsaved)} events were acknowledged in between")
    assert result["duplicated"] == 0
    assert killed - saved < 3  # it saves every 2 s
    lost = set(load.acknowledged) - set(stored)
    assert all(load.acknowledged[i] > saved for i in lost)  # everything acknowledged before the last save is kept
