"""Gathering: a busy stream is handled a burst per wake-up, a message after a quiet spell at once."""
from __future__ import annotations

import asyncio

from gateway.service import Gathering
from gateway.transport import ClientConfig, MemoryBroker, MemoryTransport, Message


async def test_a_message_after_a_quiet_spell_is_handed_over_without_gathering():
    broker = MemoryBroker()
    async with MemoryTransport(broker, ClientConfig("consumer")) as consumer, \
            MemoryTransport(broker, ClientConfig("publisher")) as publisher:
        await consumer.subscribe("t")
        deliveries = Gathering(consumer, gather=60)  # a gather would outlast the deadline below
        for n in range(3):
            assert await asyncio.wait_for(deliveries.next(timeout=0.05), 10) is None  # quiet
            publisher.publish(Message("t", str(n).encode()))
            delivery = await asyncio.wait_for(deliveries.next(timeout=None), 10)
            assert delivery is not None and delivery.message.payload == str(n).encode()


async def test_a_busy_stream_is_handed_over_whole_and_in_order():
    broker = MemoryBroker()
    async with MemoryTransport(broker, ClientConfig("consumer")) as consumer, \
            MemoryTransport(broker, ClientConfig("publisher")) as publisher:
        await consumer.subscribe("t")
        deliveries = Gathering(consumer, gather=0.02)

        async def stream() -> None:
            for n in range(50):
                publisher.publish(Message("t", str(n).encode()))
                await asyncio.sleep(0.002)  # the pace of the stream, not a wait for anything

        streaming = asyncio.ensure_future(stream())
        received = []
        while len(received) < 50:
            delivery = await asyncio.wait_for(deliveries.next(timeout=None), 10)
            assert delivery is not None
            received.append(int(delivery.message.payload))
        await streaming
        assert received == list(range(50))
