"""The reactor's checkpoint commit off the event loop (gateway/reactor/committer.py): a running reactor
acknowledges a delivery only once the SQLite transaction holding its effects has committed."""
import asyncio
import json

from gateway.events import new_event
from gateway.reactor import ReactorRunner
from gateway.state import StateStore
from gateway.transport import ClientConfig, Delivery, MemoryBroker, MemoryTransport
from tests.helpers import async_wait_for
from tests.test_reactor import committed, echo, message_of, reading


class Witnessed:
    """The reactor's transport; at each acknowledgement it notes whether another connection to the
    state database already finds the delivery's event among the handled ids."""

    def __init__(self, inner: MemoryTransport, path) -> None:
        self.inner, self.path = inner, path
        self.committed_at_ack: dict[str, bool] = {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def receive(self, timeout=None):
        delivery = await self.inner.receive(timeout)
        if delivery is None:
            return None
        event_id = json.loads(delivery.message.payload)["id"]
        return Delivery(delivery.message, lambda: self.committed_at_ack.setdefault(
            event_id, event_id in committed(self.path)["seen"]))


async def test_a_running_reactor_acknowledges_each_delivery_only_after_its_commit(tmp_path):
    path, broker = tmp_path / "echo.sqlite", MemoryBroker()
    async with MemoryTransport(broker, ClientConfig("echo")) as inner, \
            MemoryTransport(broker, ClientConfig("device")) as device:
        await inner.subscribe("events/reading.v1/+")
        transport = Witnessed(inner, path)
        runner = ReactorRunner(echo(), transport, StateStore(path))
        stop = asyncio.Event()
        running = asyncio.create_task(runner.run(stop))
        sent = []
        for burst in range(4):  # several checkpoints, each committed while the next burst is handled
            for n in range(100):
                event = new_event(reading(1000 + burst * 100 + n), source="device/t-1", subject="t-1")
                device.publish(message_of(event))
                sent.append(event.id)
            await async_wait_for(lambda wanted=100 * (burst + 1): len(transport.committed_at_ack) >= wanted, 5,
                                 "acknowledgements")
        stop.set()
        await asyncio.wait_for(running, 5)
    assert sorted(transport.committed_at_ack) == sorted(sent)
    assert all(transport.committed_at_ack.values())  # ... and each only after its effects were durable
    assert committed(path)["sequence"] == str(len(sent)) and not committed(path)["outbox"]
