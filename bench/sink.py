"""Sink throughput: events from the broker into a real InfluxDB, against the broker-only rate in the same run.

Run with `make bench` or `.venv/bin/python bench/sink.py [--events 200000] [--replicas 1]`.
Starts its own Mosquitto and InfluxDB. The same backlog of N canonical events is queued
on the broker for three persistent sessions, drained one after the other:

1. broker only: a C subscriber (`mosquitto_sub`, QoS 1) drains its copy alone;
2. ceiling: a second C subscriber drains its copy while the same events, encoded to line
   protocol beforehand, are written to InfluxDB on two connections. Broker and database
   do their whole share of the sink's job on the same two cores, with no sink work in
   between: with this schema (two points per reading) no sink can store faster here;
3. the sink (its replicas sharing one group), whose rate is counted in InfluxDB with
   COUNT over `/query`.

Writes bench/results/sink-{replicas}.json.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procstat import cpu_seconds, peak_rss_mib  # noqa: E402
from bench.report import print_table, save  # noqa: E402
from bench.services import stop, wait_online  # noqa: E402
from gateway.events import Measurement, ReadingV1, new_event  # noqa: E402
from gateway.localstack import LocalStack  # noqa: E402
from gateway.sink.schema import event_lines  # noqa: E402
from gateway.topics import event_topic  # noqa: E402
from gateway.transport import ClientConfig, Message, MqttTransport  # noqa: E402
from tests.helpers import influx_query  # noqa: E402

UNBOUNDED_QUEUES = "max_queued_messages 0\nmax_queued_bytes 0\n"  # the backlog must not be dropped
CEILING_DATABASE = "ceiling"


class Bench:
    def __init__(self, stack: LocalStack, events: int, replicas: int, state: Path, batch_size: int = 5000) -> None:
        self.stack, self.events, self.replicas, self.state = stack, events, replicas, state
        self.batch_size = batch_size
        self.admin = stack.credentials.mqtt["admin"]
        influx_admin = f"admin:{stack.credentials.influx_admin_password}".encode()
        self.influx_auth = "Basic " + base64.b64encode(influx_admin).decode()
        self.auth = ["-h", "127.0.0.1", "-p", str(stack.broker.port), "-u", "admin", "-P", self.admin]

    def c_subscriber(self, client_id: str, extra: list[str], **options) -> subprocess.Popen:
        return subprocess.Popen(["mosquitto_sub", *self.auth, "-V", "mqttv5", "-c", "-i", client_id, "-x", "3600",
                                 "-q", "1", "-t", "events/#", *extra], **options)

    def sinks(self) -> list[subprocess.Popen]:
        env = {**os.environ, **self.stack.env("sink"), "CHOREO_SINK_SPOOL_DIR": str(self.state / "spool"),
               "CHOREO_INFLUX_BATCH_SIZE": str(self.batch_size), "CHOREO_INFLUX_FLUSH_INTERVAL": "0.5"}
        env["CHOREO_SINK_GROUP"] = "sink" if self.replicas > 1 else ""  # replicas split the load in one group
        return [subprocess.Popen([sys.executable, "-m", "gateway.cli", "--log-level", "WARNING", "sink",
                                  *(["--instance", str(n)] if self.replicas > 1 else [])],
                                 env=env, stdout=subprocess.DEVNULL, stderr=open(self.state / f"sink-{n}.log", "w"))
                for n in range(1, self.replicas + 1)]

    def stored(self, database: str = "choreo") -> int:
        rows = self.query('SELECT COUNT("id") FROM "events"', database)
        return rows[0]["count"] if rows else 0

    def query(self, statement: str, database: str = "choreo") -> list[dict]:
        return influx_query(self.stack.influxdb.url, "admin", self.stack.credentials.influx_admin_password,
                            statement, database)

    def write(self, body: bytes) -> None:
        request = urllib.request.Request(f"{self.stack.influxdb.url}/write?db={CEILING_DATABASE}&precision=ns",
                                         data=body, headers={"Authorization": self.influx_auth})
        urllib.request.urlopen(request, timeout=60).close()

    def ceiling(self, bodies: list[bytes]) -> float:
        """Broker and InfluxDB doing their share of the job at once, with no sink work in between."""
        self.query(f"CREATE DATABASE {CEILING_DATABASE}")
        started = time.perf_counter()
        drain = self.c_subscriber("bench-ceiling", ["-C", str(self.events)], stdout=subprocess.DEVNULL)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(self.write, bodies))
        drain.wait(600)
        rate = self.events / (time.perf_counter() - started)
        assert self.stored(CEILING_DATABASE) == self.events, "the ceiling run did not store every event"
        return rate

    async def publish_backlog(self) -> tuple[float, list[bytes]]:
        """Queue the backlog; returns the publish rate and the same events as line-protocol bodies."""
        config = ClientConfig("bench-publisher", port=self.stack.broker.port, username="admin", password=self.admin,
                              clean_start=True, session_expiry=0)
        started = time.perf_counter()
        lines: list[str] = []
        async with MqttTransport(config) as transport:
            for n in range(self.events):
                data = ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=20 + n % 10)],
                                 site="hq", room="lab", kind="temperature")
                event = new_event(data, source=f"device/bench-{n % 500}", subject=f"bench-{n % 500}", sequence=n)
                transport.publish(Message(event_topic(event.type, event.subject), event.to_json()))
                lines += event_lines(event)
                if n % 2000 == 0:
                    await asyncio.sleep(0)
            assert await transport.flush(timeout=300), "the broker did not take the backlog"
        rate = self.events / (time.perf_counter() - started)
        per_body = 2 * self.batch_size  # a reading is two points
        return rate, [("\n".join(lines[i:i + per_body]) + "\n").encode() for i in range(0, len(lines), per_body)]

    def run(self) -> dict:
        # 1. persistent sessions for the C subscribers and the sink(s), then offline
        for client_id in ("bench-c", "bench-ceiling"):
            self.c_subscriber(client_id, ["-E"]).wait(30)
        sinks = self.sinks()
        wait_online(self.stack, "sink", [sink.pid for sink in sinks])
        stop(sinks)
        # 2. the same backlog for both
        publish_rate, bodies = asyncio.run(self.publish_backlog())
        # 3. broker only: the C subscriber drains it
        c = self.c_subscriber("bench-c", ["-C", str(self.events), "-F", "%U"], stdout=subprocess.PIPE)
        arrivals = c.communicate(timeout=600)[0].split()
        broker_rate = (len(arrivals) - 1) / (float(arrivals[-1]) - float(arrivals[0]))
        # 4. the ceiling: broker and InfluxDB with no sink work
        ceiling_rate = self.ceiling(bodies)
        del bodies
        # 5. the sink drains it into InfluxDB
        sinks = self.sinks()
        first_seen, deadline = None, time.monotonic() + 900
        while (count := self.stored()) < self.events:
            running = all(s.poll() is None for s in sinks)
            assert time.monotonic() < deadline and running, "the sinks did not store the backlog"
            if count and first_seen is None:
                first_seen = (time.perf_counter(), count)
            time.sleep(0.25)  # a bench may poll
        done = time.perf_counter()
        sink_rate = (self.events - first_seen[1]) / (done - first_seen[0])
        cpu = sum(cpu_seconds(s.pid) for s in sinks)
        rss = max(peak_rss_mib(s.pid) for s in sinks)
        stop(sinks)
        return {"events": self.events, "replicas": self.replicas, "publish_rate": publish_rate,
                "broker_only_rate": broker_rate, "ceiling_rate": ceiling_rate, "sink_rate": sink_rate,
                "ratio": sink_rate / broker_rate, "ratio_to_ceiling": sink_rate / ceiling_rate,
                "sink_cpu_seconds_per_100k": cpu / self.events * 100_000, "sink_peak_rss_mib": rss,
                "stored": self.stored()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=5000, help="the sink's influx.batch_size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        stack = LocalStack(Path(state))
        stack.broker.extra_config = UNBOUNDED_QUEUES
        with stack:
            result = Bench(stack, args.events, args.replicas, Path(state), args.batch_size).run()
    print_table(f"{result['events']:,} events (readings, one point each in `events` and `readings`), "
                f"sink replicas: {result['replicas']}", [
                    ("broker only: backlog drained by mosquitto_sub, QoS 1",
                     f"{result['broker_only_rate']:,.0f} events/s"),
                    ("ceiling: broker drain and InfluxDB writes at once, no sink work",
                     f"{result['ceiling_rate']:,.0f} events/s"),
                    ("sink: backlog stored in InfluxDB (counted there)", f"{result['sink_rate']:,.0f} events/s"),
                    ("sink / broker only", f"{result['ratio']:.2f}"),
                    ("sink / ceiling", f"{result['ratio_to_ceiling']:.2f}"),
                    ("sink CPU per 100,000 events", f"{result['sink_cpu_seconds_per_100k']:.1f} s"),
                    ("sink peak RSS", f"{result['sink_peak_rss_mib']:.0f} MiB"),
                    ("stored / published", f"{result['stored']:,} / {result['events']:,}"),
                ])
    save(f"sink-{result['replicas']}", result)


if __name__ == "__main__":
    main()
