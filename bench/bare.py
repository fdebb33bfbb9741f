"""The pipeline's floor: ingest, threshold and sink with none of their own work, on the same transport.

`bench/pipeline.py --systems bare` runs these three processes in place of ours: the same topology,
accounts, QoS 1 hops, gathering and event loop, and each acknowledges as ours does (once what it
made is published or stored), but none validates, keeps state or builds a CloudEvent. Ingest turns
`{"seq", "ts", "temperature"}` into `{"subject", "time", "temperature"}` on `events/reading.v1/{id}`,
the threshold publishes `{"subject", "time", "value"}` on `events/alert.raised.v1/{id}` for a value
above the limit, and the sink writes each event as a point (a reading: `device` tag, `temperature`
field) in batches. What ours spends above this floor is its own work; what the floor spends, its topology.

Run as `python bench/bare.py ingest|threshold|sink`, configured by the CHOREO_* variables that
`LocalStack.env(account)` gives, plus BENCH_BARE_LIMIT and the InfluxDB database's admin account.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.service import consume, serve  # noqa: E402
from gateway.settings import InfluxSettings  # noqa: E402
from gateway.sink.influx_v1 import InfluxV1  # noqa: E402
from gateway.transport import ClientConfig, Delivery, Message, MqttTransport, Transport  # noqa: E402

GATHER = 0.004  # ours' default `mqtt.gather`
SINK_LINGER, BATCH, FLUSH_INTERVAL = 0.02, 5000, 1.0  # ours' sink defaults
READINGS, ALERTS = "events/reading.v1/", "events/alert.raised.v1/"


def ingest(transport: Transport) -> Callable[[Delivery], None]:
    def process(delivery: Delivery) -> None:
        message = delivery.message
        reading = json.loads(message.payload)
        device = message.topic.split("/")[1]
        fact = {"subject": device, "time": reading["ts"], "temperature": reading["temperature"]}
        delivery.ack_when([transport.publish(Message(READINGS + device, json.dumps(fact).encode()))])

    return process


def threshold(transport: Transport) -> Callable[[Delivery], None]:
    limit = float(os.environ["BENCH_BARE_LIMIT"])

    def process(delivery: Delivery) -> None:
        reading = json.loads(delivery.message.payload)
        if reading["temperature"] <= limit:
            delivery.ack()
            return
        alert = {"subject": reading["subject"], "time": reading["time"], "value": reading["temperature"]}
        delivery.ack_when([transport.publish(Message(ALERTS + reading["subject"], json.dumps(alert).encode()))])

    return process


class Batch:
    """Events as points, written and then acknowledged a batch at a time, as ours' sink does."""

    def __init__(self, writer: InfluxV1) -> None:
        self.writer = writer
        self.lines: list[str] = []
        self.deliveries: list[Delivery] = []
        self.opened = 0.0

    def add(self, delivery: Delivery) -> None:
        if not self.deliveries:
            self.opened = time.monotonic()
        self.deliveries.append(delivery)
        event = json.loads(delivery.message.payload)
        nanoseconds = int(datetime.fromisoformat(event["time"]).timestamp() * 1e6) * 1000
        if delivery.message.topic.startswith(READINGS):
            self.lines.append(f"readings,device={event['subject']} temperature={event['temperature']} {nanoseconds}")
        else:
            self.lines.append(f"events,subject={event['subject']} value={event['value']} {nanoseconds}")

    def due(self) -> bool:
        return len(self.deliveries) >= BATCH or (bool(self.deliveries)
                                                  and time.monotonic() - self.opened >= FLUSH_INTERVAL)

    async def write(self) -> None:
        lines, deliveries, self.lines, self.deliveries = self.lines, self.deliveries, [], []
        await asyncio.to_thread(self.writer.write, lines)  # only when due: never empty
        for delivery in deliveries:
            delivery.ack()


async def sink(transport: Transport, stop: asyncio.Event) -> None:
    writer = InfluxV1(InfluxSettings(url=os.environ["CHOREO_INFLUX_URL"], database=os.environ["CHOREO_INFLUX_DATABASE"],
                                     username=os.environ["CHOREO_INFLUX_USERNAME"],
                                     password=os.environ["CHOREO_INFLUX_PASSWORD"]))
    batch = Batch(writer)
    while not stop.is_set():
        delivery = await transport.receive(timeout=0)
        if delivery is None and batch.deliveries:
            await transport.gather(SINK_LINGER)
            delivery = await transport.receive(timeout=0)
        if delivery is None and not batch.due():
            delivery = await transport.receive(timeout=0.1 if batch.deliveries else 0.5)
        if delivery is not None:
            batch.add(delivery)
        if batch.due():
            await batch.write()


def main(role: str) -> int:
    config = ClientConfig(f"bare-{role}", port=int(os.environ["CHOREO_MQTT_PORT"]),
                          username=os.environ["CHOREO_MQTT_USERNAME"], password=os.environ["CHOREO_MQTT_PASSWORD"],
                          clean_start=True, session_expiry=0, receive_maximum=2 * BATCH if role == "sink" else 1000)
    reads = {"ingest": "devices/+/telemetry", "threshold": READINGS + "+", "sink": "events/#"}[role]

    async def run(stop: asyncio.Event) -> None:
        async with MqttTransport(config) as transport:
            await transport.subscribe(reads)
            print("ready", flush=True)
            if role == "sink":
                await sink(transport, stop)
            else:
                await consume(transport, stop, {"ingest": ingest, "threshold": threshold}[role](transport), GATHER)

    return serve(f"bare-{role}", run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
