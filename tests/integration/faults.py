"""What the fault tests share: a steady QoS 1 load that keeps what the broker acknowledged, services as
processes, and the accounting of every event (published, acknowledged, stored, lost, duplicated)."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

from gateway.events import Measurement, ReadingV1, new_event
from gateway.topics import event_topic
from gateway.transport import ClientConfig, Message, MqttTransport
from tests.helpers import MqttObserver, influx_query, wait_for


def sink_env(stack, tmp_path) -> dict[str, str]:
    return {**stack.env("sink"), "CHOREO_SINK_SPOOL_DIR": str(tmp_path / "spool"),
            "CHOREO_INFLUX_FLUSH_INTERVAL": "0.2", "CHOREO_INFLUX_BATCH_SIZE": "1000"}


def start_service(services, observer: MqttObserver, name: str, env: dict):
    """`choreo {name}` as a process, once its manifest says online (`observer` reads choreo/services/#)."""
    seen = len(observer.manifests(name))
    process = services.start(name, [name], env)
    wait_for(lambda: any(manifest["status"] == "online" for manifest in observer.manifests(name)[seen:]),
             30, f"{name} online")
    return process


def start_sink(stack, services, observer: MqttObserver, env: dict):
    return start_service(services, observer, "sink", env)


def budget(device: str, rate: float) -> dict[str, str]:
    """Ingest's settings for a load generator publishing as `device` at `rate` readings a second: a budget
    that admits it, and its backlog after a minute away (docs/flow-control.md), instead of shedding it."""
    return {"CHOREO_INGEST_BUDGETS": json.dumps({f"device:{device}": {"rate": 2 * rate, "burst": 60 * rate}})}


class SteadyLoad:
    """Publishes readings at a fixed rate with QoS 1 and keeps the keys the broker acknowledged, with when.

    A reading is a `reading.v1` event (key: its id) or, with `device=True`, a device's raw telemetry
    for ingest (key: its `seq`, which the event ingest makes of it keeps as `sequence`).
    """

    def __init__(self, stack, subject: str, rate: float, device: bool = False) -> None:
        self.config = ClientConfig(f"load-{uuid.uuid4().hex[:6]}", port=stack.broker.port, username="admin",
                                   password=stack.credentials.mqtt["admin"])
        self.subject = subject
        self.device = device
        self.interval = 1 / rate
        self.published: list[str] = []
        self.acknowledged: dict[str, float] = {}  # key -> wall-clock time its PUBACK arrived

    def message(self, n: int) -> tuple[str, Message]:
        if self.device:
            ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            payload = json.dumps({"seq": n, "ts": ts, "temperature": 20 + n % 10})
            return str(n), Message(f"devices/{self.subject}/telemetry", payload.encode())
        data = ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=float(n))])
        event = new_event(data, source=f"device/{self.subject}", subject=self.subject, sequence=n)
        return event.id, Message(event_topic(event.type, event.subject), event.to_json())

    async def run(self, seconds: float, during=None) -> None:
        async with MqttTransport(self.config) as transport:
            started = time.monotonic()
            hook = asyncio.ensure_future(during()) if during else None
            n = 0
            while time.monotonic() - started < seconds:
                n += 1
                key, message = self.message(n)
                future = transport.publish(message)
                future.add_done_callback(
                    lambda f, k=key: f.cancelled() or f.exception() or self.acknowledged.setdefault(k, time.time()))
                self.published.append(key)
                await asyncio.sleep(max(0.0, started + n * self.interval - time.monotonic()))
            assert await transport.flush(timeout=30)
            if hook:
                await hook


def stored_ids(stack, subject: str, key: str = "id") -> list[str]:
    """The `key` field (id, or sequence) of every event stored for `subject`, one per point (a reading is
    one point in `readings`, tagged `device`; any other event one in `events`, tagged `subject`)."""
    rows = influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password,
                        f"SELECT {key} FROM events, readings WHERE (subject = '{subject}' OR device = '{subject}') "
                        "AND time > now() - 1h")
    return [str(row[key]) for row in rows]


def accounting(load: SteadyLoad, stored: list[str]) -> dict[str, int]:
    return {"published": len(load.published), "acknowledged": len(load.acknowledged), "stored": len(set(stored)),
            "lost": len(set(load.acknowledged) - set(stored)), "duplicated": len(stored) - len(set(stored))}
