"""What the fault tests share: a steady QoS 1 load with the ids the broker acknowledged, the sink as a
process, and the accounting of every event (published, acknowledged, stored, lost, duplicated)."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

from gateway.events import Measurement, ReadingV1, new_event
from gateway.topics import event_topic
from gateway.transport import ClientConfig, Message, MqttTransport
from tests.helpers import MqttObserver, influx_query, wait_for


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
    """Publishes readings at a fixed rate with QoS 1 and keeps the ids the broker acknowledged, with when."""

    def __init__(self, stack, subject: str, rate: float) -> None:
        self.config = ClientConfig(f"load-{uuid.uuid4().hex[:6]}", port=stack.broker.port, username="admin",
                                   password=stack.credentials.mqtt["admin"])
        self.subject = subject
        self.interval = 1 / rate
        self.published: list[str] = []
        self.acknowledged: dict[str, float] = {}  # id -> wall-clock time its PUBACK arrived

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
                future.add_done_callback(lambda f, i=event.id: f.exception() or self.acknowledged.setdefault(i, time.time()))
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
