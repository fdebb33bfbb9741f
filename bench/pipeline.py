"""The whole job, side by side: the broker's limit, Node-RED and ours, on one machine and one load.

Run with `make bench` or `.venv/bin/python bench/pipeline.py [--events 200000] [--seconds 20]`.
Starts its own Mosquitto and InfluxDB, then measures, one after the other:

1. broker limit: `mosquitto_pub -l` and `mosquitto_sub` moving the same telemetry at QoS 1;
2. ours: ingest, the threshold reactor and the sink as separate processes, as deployed;
3. Node-RED (bench/nodered/flows.json): MQTT in, a threshold function emitting an alert
   message, every reading written to the same InfluxDB through node-red-contrib-influxdb.

The load is the device fleet's telemetry (`{"seq", "ts", "temperature"}` on
`devices/{id}/telemetry`, QoS 1) from one generator: every tenth reading of a device
is above the 28 Cel limit, the next one back below it. Each system runs the load flat
out (its sustained rate is counted in InfluxDB, never inferred), then at 5,000
readings/s and at 80% of its sustained rate, where an independent subscriber measures
reading -> alert latency from the reading's own timestamp. CPU seconds per 100,000
readings and peak RSS are read from /proc for every process of each system.
Writes bench/results/pipeline.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as paho

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procstat import cpu_seconds, peak_rss_mib, rss_mib  # noqa: E402
from bench.report import save  # noqa: E402
from gateway.localstack import DATABASE, LocalStack  # noqa: E402
from gateway.transport import ClientConfig, Message, MqttTransport  # noqa: E402
from tests.helpers import MqttObserver, influx_query, wait_for  # noqa: E402

UNBOUNDED_QUEUES = "max_queued_messages 0\nmax_queued_bytes 0\n"  # a flat-out backlog must not be dropped
LIMIT = 28.0
DEVICES = 500
MODERATE_RATE = 5000


# -- the load ------------------------------------------------------------------------------
class Load:
    """The fleet's telemetry from one connection; device sequence numbers keep rising across runs."""

    def __init__(self, port: int, password: str) -> None:
        self.config = ClientConfig("bench-load", port=port, username="admin", password=password,
                                   clean_start=True, session_expiry=0)
        self.sent = 0
        self.hot = 0  # readings above the limit: each one raises an alert

    def next_message(self) -> Message:
        device, seq = self.sent % DEVICES, self.sent // DEVICES
        self.sent += 1
        value = LIMIT + 2 if seq % 10 == 0 else LIMIT - 8
        self.hot += seq % 10 == 0
        ts = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        payload = f'{{"seq":{seq},"ts":"{ts}","temperature":{value}}}'.encode()
        return Message(f"devices/bench-{device}/telemetry", payload)

    async def publish(self, count: int, rate: float | None = None) -> float:
        """Publish `count` readings at `rate` per second, or as fast as the broker takes them."""
        started = time.perf_counter()
        async with MqttTransport(self.config) as transport:
            sent = 0
            while sent < count:
                due = count if rate is None else min(count, int((time.perf_counter() - started) * rate) + 1)
                for _ in range(min(due - sent, 2000)):
                    transport.publish(self.next_message())
                    sent += 1
                await asyncio.sleep(0 if rate is None else 0.001)
            assert await transport.flush(timeout=600), "the broker did not take the load"
        return count / (time.perf_counter() - started)


class LatencyProbe:
    """An independent subscriber: for each alert, now minus the timestamp of the reading that caused it."""

    def __init__(self, port: int, password: str, topic: str, reading_time) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-latency", protocol=paho.MQTTv5)
        self.client.username_pw_set("admin", password)
        self.client.on_message = self._on_message
        self.reading_time, self.topic, self.port = reading_time, topic, port
        self.latencies: list[float] = []
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self.subscribed.set()

    def _on_message(self, client, userdata, message) -> None:
        self.latencies.append(time.time() - self.reading_time(json.loads(message.payload)))

    def __enter__(self) -> "LatencyProbe":
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        self.client.subscribe(self.topic, qos=0)
        assert self.subscribed.wait(10), "no SUBACK for the latency probe"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def summary(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    if not ordered:
        return {"alerts": 0}
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"alerts": len(ordered), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": ordered[-1] * 1000}


def epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


# -- the systems under test ----------------------------------------------------------------
@dataclass
class System:
    name: str
    alert_topic: str
    database: str
    processes: dict[str, int] = field(default_factory=dict)  # name -> pid

    def reading_time(self, alert: dict) -> float:
        raise NotImplementedError


class Ours(System):
    def __init__(self, stack: LocalStack, state: Path) -> None:
        super().__init__("ours", "events/alert.raised.v1/+", DATABASE)
        self.stack, self.state = stack, state
        self.popen: dict[str, subprocess.Popen] = {}

    def reading_time(self, alert: dict) -> float:
        return epoch(alert["time"])  # a fact's time is the time of the reading that caused it

    def __enter__(self) -> "Ours":
        common = {"CHOREO_THRESHOLD_MIN_DURATION": "0", "CHOREO_REACTORS_STATE_DIR": str(self.state / "reactors"),
                  "CHOREO_SINK_SPOOL_DIR": str(self.state / "spool"), "CHOREO_SINK_GROUP": ""}
        for name, command, account in (("ingest", ["ingest"], "ingest"), ("threshold", ["reactor", "threshold"], "threshold"),
                                       ("sink", ["sink"], "sink")):
            env = {**os.environ, **self.stack.env(account), **common}
            log = open(self.state / f"{name}.log", "w")
            self.popen[name] = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--log-level", "WARNING", *command],
                                                env=env, stdout=log, stderr=subprocess.STDOUT)
            self.processes[name] = self.popen[name].pid
        self._wait_online()
        return self

    def _wait_online(self) -> None:
        """Until each process has announced itself, which it does once subscribed."""
        def online(pid: int, messages) -> bool:
            documents = [json.loads(m.payload) for m in messages]
            return any(d["status"] == "online" and d["instance"].endswith(f":{pid}") for d in documents)

        with MqttObserver(self.stack.broker.port, "admin", self.stack.credentials.mqtt["admin"], "bench-status") as observer:
            observer.subscribe("choreo/services/#")
            wait_for(lambda: all(online(pid, observer.on(f"choreo/services/{name}"))
                                 for name, pid in self.processes.items()), 60, "ingest, threshold and sink online")

    def __exit__(self, *exc_info: object) -> None:
        for process in self.popen.values():
            process.send_signal(signal.SIGTERM)
        for process in self.popen.values():
            process.wait(60)


class Peer(System):
    def __init__(self, stack: LocalStack, state: Path) -> None:
        from bench.nodered import ALERTS, NodeRed, install  # only when measured: it needs Node.js

        super().__init__("node-red", ALERTS + "+", "nodered")
        install()  # npm ci, the first time: not part of any figure
        influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password, f"CREATE DATABASE {self.database}")
        self.node_red = NodeRed.for_stack(stack, database=self.database, alert_above=LIMIT)

    def reading_time(self, alert: dict) -> float:
        return epoch(alert["ts"])  # copied from the reading by the flow

    def __enter__(self) -> "Peer":
        self.node_red.__enter__()
        self.processes["node-red"] = self.node_red.pid
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.node_red.__exit__(*exc_info)


# -- the runs ------------------------------------------------------------------------------
class Bench:
    def __init__(self, stack: LocalStack, events: int, seconds: float) -> None:
        self.stack, self.events, self.seconds = stack, events, seconds
        self.password = stack.credentials.mqtt["admin"]
        self.load = Load(stack.broker.port, self.password)

    def stored(self, system: System) -> int:
        rows = influx_query(self.stack.influxdb.url, "admin", self.stack.credentials.influx_admin_password,
                            'SELECT COUNT("value") FROM "readings"', system.database)
        return rows[0]["count"] if rows else 0

    def broker_limit(self) -> float:
        """mosquitto_pub -l and mosquitto_sub moving the same telemetry; the rate the subscriber saw."""
        auth = ["-h", "127.0.0.1", "-p", str(self.stack.broker.port), "-u", "admin", "-P", self.password]
        subscriber = ["mosquitto_sub", *auth, "-V", "mqttv5", "-c", "-x", "600", "-i", "bench-limit", "-q", "1",
                      "-t", "devices/+/telemetry"]
        subprocess.run([*subscriber, "-E"], check=True, timeout=30)  # its session exists before the first message
        sub = subprocess.Popen([*subscriber, "-C", str(self.events), "-F", "%U"], stdout=subprocess.PIPE)
        # mosquitto_pub quits early on a wrapped message id once its input ends: keep the input open
        pub = subprocess.Popen(["mosquitto_pub", *auth, "-q", "1", "-M", "1000", "-t", "devices/bench-0/telemetry", "-l"],
                               stdin=subprocess.PIPE)
        pub.stdin.write(b"".join(self.load.next_message().payload + b"\n" for _ in range(self.events)))
        pub.stdin.flush()
        arrivals = sub.communicate(timeout=600)[0].split()
        pub.stdin.close()
        pub.wait(30)
        return (len(arrivals) - 1) / (float(arrivals[-1]) - float(arrivals[0]))

    def measure(self, system: System) -> dict:
        with system, LatencyProbe(self.stack.broker.port, self.password, system.alert_topic, system.reading_time) as probe:
            self.probe, self.hot_before = probe, self.load.hot
            self.warm_up(system)
            result = {"flat_out": self.flat_out(system)}
            result["at_5000"] = self.paced(system, MODERATE_RATE)
            result["at_80_percent"] = self.paced(system, 0.8 * result["flat_out"]["stored_per_second"])
            result["peak_rss_mib"] = {name: peak_rss_mib(pid) for name, pid in system.processes.items()}
        return result

    def caught_up(self, system: System, readings: int) -> None:
        """Until every reading published so far is stored and every alert it causes has arrived."""
        wait_for(lambda: self.stored(system) >= readings, 300, f"{system.name}: every reading stored")
        wait_for(lambda: len(self.probe.latencies) >= self.load.hot - self.hot_before, 60, f"{system.name}: every alert")

    def warm_up(self, system: System) -> None:
        """One reading per device all the way through, before anything is measured."""
        before = self.stored(system)
        asyncio.run(self.load.publish(DEVICES))
        self.caught_up(system, before + DEVICES)

    def flat_out(self, system: System) -> dict:
        before, cpu = self.stored(system), self.cpu(system)
        publisher = threading.Thread(target=lambda: asyncio.run(self.load.publish(self.events)))
        publisher.start()
        first = None
        while (count := self.stored(system) - before) < self.events:
            if count and first is None:
                first = (time.perf_counter(), count)
            time.sleep(0.25)  # a bench may poll
        rate = (self.events - first[1]) / (time.perf_counter() - first[0])
        publisher.join()
        self.caught_up(system, before + self.events)
        return {"readings": self.events, "stored_per_second": rate, **self.cpu_per_100k(system, cpu, self.events)}

    def paced(self, system: System, rate: float) -> dict:
        count = int(rate * self.seconds)
        before, cpu, alerts = self.stored(system), self.cpu(system), len(self.probe.latencies)
        rss: dict[str, list[float]] = {name: [] for name in system.processes}
        publisher = threading.Thread(target=lambda: asyncio.run(self.load.publish(count, rate)))
        publisher.start()
        while publisher.is_alive():
            for name, pid in system.processes.items():
                rss[name].append(rss_mib(pid))
            publisher.join(1.0)
        self.caught_up(system, before + count)
        return {"rate": rate, "readings": count, "latency": summary(self.probe.latencies[alerts:]),
                "rss_mib": {name: {"first": s[0], "last": s[-1], "max": max(s)} for name, s in rss.items() if s},
                **self.cpu_per_100k(system, cpu, count)}

    @staticmethod
    def cpu(system: System) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in system.processes.items()}

    def cpu_per_100k(self, system: System, before: dict[str, float], readings: int) -> dict:
        now = self.cpu(system)
        return {"cpu_seconds_per_100k": {name: (now[name] - before[name]) / readings * 100_000 for name in now}}


def print_report(result: dict) -> None:
    systems = [name for name in ("ours", "node-red") if name in result]
    limit = result["broker_limit_per_second"]
    rows: list[tuple[str, ...]] = [("sustained readings/s stored in InfluxDB", *(
        f"{result[s]['flat_out']['stored_per_second']:,.0f}" for s in systems))]
    for run, label in (("at_5000", "5,000/s"), ("at_80_percent", "80% of sustained")):
        for q in ("p50", "p99", "max"):
            rows.append((f"reading -> alert {q} at {label} (ms)", *(
                f"{result[s][run]['latency'].get(q + '_ms', float('nan')):,.1f}" for s in systems)))
    rows.append(("CPU s per 100,000 readings at 5,000/s (all processes)", *(
        f"{sum(result[s]['at_5000']['cpu_seconds_per_100k'].values()):.1f}" for s in systems)))
    rows.append(("peak RSS (MiB, largest process)", *(
        f"{max(result[s]['peak_rss_mib'].values()):.0f}" for s in systems)))
    print(f"\nbroker limit (mosquitto_pub -> mosquitto_sub, QoS 1): {limit:,.0f} msg/s\n")
    print("| figure | " + " | ".join(systems) + " |")
    print("|---|" + "---:|" * len(systems))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    ours = result.get("ours", {}).get("flat_out", {}).get("stored_per_second")
    if ours:
        print(f"\nours / broker limit: {ours / limit:.2f}")
        if "node-red" in result:
            print(f"ours / Node-RED: {ours / result['node-red']['flat_out']['stored_per_second']:.2f}")
    for s in systems:
        per_process = ", ".join(f"{name} {cpu:.1f} s / {result[s]['peak_rss_mib'][name]:.0f} MiB"
                                for name, cpu in result[s]["at_5000"]["cpu_seconds_per_100k"].items())
        print(f"{s}, CPU per 100,000 readings and peak RSS by process: {per_process}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="readings per flat-out run")
    parser.add_argument("--seconds", type=float, default=20, help="length of each paced run")
    parser.add_argument("--systems", default="ours,node-red", help="which systems to measure, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        stack = LocalStack(Path(state))
        stack.broker.extra_config = UNBOUNDED_QUEUES
        with stack:
            bench = Bench(stack, args.events, args.seconds)
            result = {"broker_limit_per_second": bench.broker_limit()}
            systems = {"ours": Ours, "node-red": Peer}
            for name in args.systems.split(","):
                result[name] = bench.measure(systems[name](stack, Path(state)))
    print_report(result)
    print(f"\n(all figures in {save('pipeline', result)})")


if __name__ == "__main__":
    main()
