"""What the in-memory twin must do beyond the shared behaviour suite."""
from gateway.transport import ClientConfig, MemoryBroker, MemoryTransport, Message
from tests.transport.test_behaviour import receive_all


async def test_memory_twin_publishes_the_last_will_on_a_crash():
    broker = MemoryBroker()
    will = Message("devices/d/status", b"offline", retain=True)
    async with MemoryTransport(broker, ClientConfig("watcher")) as watcher:
        await watcher.subscribe("devices/+/status")
        device = MemoryTransport(broker, ClientConfig("d", will=will))
        await device.__aenter__()
        device.crash()
        [message] = await receive_all(watcher, 1)
        assert message.payload == b"offline"
        assert broker.retained["devices/d/status"].payload == b"offline"


async def test_birth_message_on_every_connect():
    broker = MemoryBroker()
    birth = Message("devices/d/status", b"online", retain=True)
    async with MemoryTransport(broker, ClientConfig("d", birth=birth)):
        assert broker.retained["devices/d/status"].payload == b"online"
