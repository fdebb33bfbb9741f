"""The whole job, side by side: the broker's limit, Node-RED and ours, on one machine and one load.

Run with `make bench` or `.venv/bin/python bench/pipeline.py [--events 200000] [--seconds 20] [--memory-seconds 600]`.
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
reading -> alert latency from the reading's own timestamp, and for ten minutes
(`--memory-seconds`) at half its sustained rate, sampling every process's RSS each
second. CPU seconds per 100,000 readings and peak RSS are read from /proc for
every process of each system. Progress goes to standard error, the table to
standard output, and the figures to bench/results/pipeline.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procstat import cpu_seconds, peak_rss_mib, rss_mib  # noqa: E402
from bench.report import save  # noqa: E402
from bench.services import stop, wait_online  # noqa: E402
from gateway.localstack import DATABASE, LocalStack  # noqa: E402
from gateway.transport import ClientConfig, Message, MqttTransport  # noqa: E402
from tests.helpers import influx_query  # noqa: E402

UNBOUNDED_QUEUES = "max_queued_messages 0\nmax_queued_bytes 0\n"  # a flat-out backlog must not be dropped
LIMIT = 28.0
DEVICES = 500
MODERATE_RATE = 5000
MEMORY_RUN_SHARE = 0.5  # of the sustained rate: a pace each system keeps up for ten minutes
SERVERS = ("mosquitto", "influxd")


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
        ts = datetime.now(UTC).isoformat(timespec="microseconds")
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


class Publishing(threading.Thread):
    """The load on a thread of its own while the bench watches; result() re-raises its error."""

    def __init__(self, load: Load, count: int, rate: float | None = None) -> None:
        super().__init__(daemon=True)
        self.load, self.count, self.wanted = load, count, rate
        self.achieved: float | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.achieved = asyncio.run(self.load.publish(self.count, self.wanted))
        except BaseException as exc:  # handed to result()
            self.error = exc

    def result(self) -> float:
        self.join()
        if self.error:
            raise self.error
        return self.achieved


class LatencyProbe:
    """An independent C subscriber (`mosquitto_sub`) stamps each alert as it arrives; the latency is
    that time minus the timestamp of the reading that caused the alert."""

    def __init__(self, stack: LocalStack, topic: str, reading_time) -> None:
        self.command = ["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(stack.broker.port),
                        "-u", "admin", "-P", stack.credentials.mqtt["admin"], "-i", "bench-latency", "-q", "0",
                        "-t", topic,
                        "-F", "%U %p", "-d"]  # -d: its own log on the same stream tells when it has subscribed
        self.reading_time = reading_time
        self.latencies: list[float] = []
        self.subscribed = threading.Event()

    def _read(self) -> None:
        for line in self.process.stdout:
            if "received SUBACK" in line:
                self.subscribed.set()
            arrived, _, payload = line.partition(" ")
            if payload.startswith("{"):  # not a line of the client's own log
                self.latencies.append(float(arrived) - self.reading_time(json.loads(payload)))

    def __enter__(self) -> LatencyProbe:
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        if not self.subscribed.wait(10):
            stop([self.process])
            raise AssertionError("the latency probe did not subscribe")
        return self

    def __exit__(self, *exc_info: object) -> None:
        stop([self.process])


def progress(step: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {step}", file=sys.stderr, flush=True)


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

    def __enter__(self) -> Ours:
        # Session expiry 0: once stopped, ours leaves no session queueing the next system's load.
        common = {"CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "0",
                  "CHOREO_REACTORS_STATE_DIR": str(self.state / "reactors"),
                  "CHOREO_SINK_SPOOL_DIR": str(self.state / "spool"), "CHOREO_MQTT_SESSION_EXPIRY": "0"}
        for name, command, account in (("ingest", ["ingest"], "ingest"),
                                       ("threshold", ["reactor", "threshold"], "threshold"),
                                       ("sink", ["sink"], "sink")):
            env = {**os.environ, **self.stack.env(account), **common}
            with open(self.state / f"{name}.log", "w") as log:
                self.popen[name] = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--log-level", "WARNING",
                                                     *command], env=env, stdout=log, stderr=subprocess.STDOUT)
            self.processes[name] = self.popen[name].pid
        try:
            for name, pid in self.processes.items():
                wait_online(self.stack, name, [pid])
        except BaseException:
            stop(list(self.popen.values()))
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        stop(list(self.popen.values()))


class Peer(System):
    def __init__(self, stack: LocalStack, state: Path) -> None:
        from bench.nodered import ALERTS, NodeRed  # only when measured: it needs Node.js

        super().__init__("node-red", ALERTS + "+", "nodered")
        influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password,
                     f"CREATE DATABASE {self.database}")
        self.node_red = NodeRed.for_stack(stack, database=self.database, alert_above=LIMIT)

    def reading_time(self, alert: dict) -> float:
        return epoch(alert["ts"])  # copied from the reading by the flow

    def __enter__(self) -> Peer:
        self.node_red.__enter__()
        self.processes["node-red"] = self.node_red.pid
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.node_red.__exit__(*exc_info)


# -- the runs ------------------------------------------------------------------------------
class Bench:
    def __init__(self, stack: LocalStack, events: int, seconds: float, memory_seconds: float = 0) -> None:
        self.stack, self.events, self.seconds, self.memory_seconds = stack, events, seconds, memory_seconds
        self.password = stack.credentials.mqtt["admin"]
        self.load = Load(stack.broker.port, self.password)

    def stored(self, system: System) -> int:
        rows = influx_query(self.stack.influxdb.url, "admin", self.stack.credentials.influx_admin_password,
                            'SELECT COUNT("value") FROM "readings"', system.database)
        return rows[0]["count"] if rows else 0

    def broker_limit(self) -> float:
        """mosquitto_pub -l and mosquitto_sub moving the same telemetry; the rate the subscriber saw."""
        auth = ["-h", "127.0.0.1", "-p", str(self.stack.broker.port), "-u", "admin", "-P", self.password]
        subscriber = ["mosquitto_sub", *auth, "-i", "bench-limit", "-q", "1", "-t", "devices/+/telemetry"]
        persistent = ["-V", "mqttv5", "-c", "-x", "600"]
        # the session exists before any message
        subprocess.run([*subscriber, *persistent, "-E"], check=True, timeout=30)
        with tempfile.TemporaryFile() as arrivals:
            sub = subprocess.Popen([*subscriber, *persistent, "-C", str(self.events), "-F", "%U"], stdout=arrivals)
            # mosquitto_pub quits early on a wrapped message id once its input ends: keep the input open
            pub = subprocess.Popen(["mosquitto_pub", *auth, "-q", "1", "-M", "1000", "-t", "devices/bench-0/telemetry",
                                    "-l"], stdin=subprocess.PIPE)
            try:
                pub.stdin.write(b"".join(self.load.next_message().payload + b"\n" for _ in range(self.events)))
                pub.stdin.flush()
                sub.wait(600)
            finally:
                pub.stdin.close()
                stop([pub, sub], timeout=30)
            arrivals.seek(0)
            times = arrivals.read().split()
        # a clean start ends the session: no queue for later runs
        subprocess.run([*subscriber, "-E"], check=True, timeout=30)
        return (len(times) - 1) / (float(times[-1]) - float(times[0]))

    def measure(self, system: System) -> dict:
        with system, LatencyProbe(self.stack, system.alert_topic, system.reading_time) as probe:
            self.probe, self.hot_before = probe, self.load.hot
            self.warm_up(system)
            progress(f"{system.name}: flat out, {self.events:,} readings")
            result = {"flat_out": self.flat_out(system)}
            sustained = result["flat_out"]["stored_per_second"]
            progress(f"{system.name}: {sustained:,.0f} readings/s; now {MODERATE_RATE:,}/s for {self.seconds:.0f} s")
            result["at_5000"] = self.paced(system, MODERATE_RATE, self.seconds)
            progress(f"{system.name}: 80% of sustained for {self.seconds:.0f} s")
            result["at_80_percent"] = self.paced(system, 0.8 * sustained, self.seconds)
            if self.memory_seconds:
                progress(f"{system.name}: memory, {MEMORY_RUN_SHARE:.0%} of sustained for {self.memory_seconds:.0f} s")
                result["memory_run"] = self.paced(system, MEMORY_RUN_SHARE * sustained, self.memory_seconds,
                                                  must_complete=False)
            result["peak_rss_mib"] = {name: peak_rss_mib(pid) for name, pid in system.processes.items()}
        return result

    def caught_up(self, system: System, readings: int, timeout: float = 300) -> dict:
        """Wait until `readings` are stored and every alert caused so far has arrived, at most `timeout`
        seconds for each; what is still missing then (zeros once caught up)."""
        deadline = time.monotonic() + timeout
        missing = lambda: {"readings": max(0, readings - self.stored(system)),  # noqa: E731
                           "alerts": max(0, self.load.hot - self.hot_before - len(self.probe.latencies))}
        while missing()["readings"] and time.monotonic() < deadline:
            time.sleep(0.25)  # a bench may poll
        deadline = time.monotonic() + min(timeout, 60)
        while missing()["alerts"] and time.monotonic() < deadline:
            time.sleep(0.25)
        return missing()

    def complete(self, system: System, readings: int) -> None:
        missing = self.caught_up(system, readings)
        assert not any(missing.values()), f"{system.name} is missing {missing} after the run"

    def warm_up(self, system: System) -> None:
        """One reading per device all the way through, before anything is measured."""
        before = self.stored(system)
        asyncio.run(self.load.publish(DEVICES))
        self.complete(system, before + DEVICES)

    def flat_out(self, system: System) -> dict:
        """The sustained rate: readings stored per second from the first stored one to the last."""
        before, cpu = self.stored(system), self.cpu(system)
        started, deadline = time.perf_counter(), time.monotonic() + 900
        publisher = Publishing(self.load, self.events)
        first = None
        while (count := self.stored(system) - before) < self.events:
            assert publisher.error is None and time.monotonic() < deadline, f"{system.name}: flat-out run failed"
            if count and first is None:
                first = (time.perf_counter(), count)
            time.sleep(0.25)  # a bench may poll
        first = first or (started, 0)
        rate = (self.events - first[1]) / (time.perf_counter() - first[0])
        publisher.result()
        self.complete(system, before + self.events)
        return {"readings": self.events, "stored_per_second": rate, **self.cpu_per_100k(system, cpu, self.events)}

    def paced(self, system: System, rate: float, seconds: float, must_complete: bool = True) -> dict:
        """`rate` readings/s for `seconds`; with `must_complete` False, readings and alerts still
        missing a minute after the end are reported instead of failing the bench."""
        count = int(rate * seconds)
        before, cpu, alerts = self.stored(system), self.cpu(system), len(self.probe.latencies)
        rss: dict[str, list[float]] = {name: [] for name in system.processes}
        publisher = Publishing(self.load, count, rate)
        while publisher.is_alive():
            for name, pid in system.processes.items():
                rss[name].append(rss_mib(pid))
            publisher.join(1.0)
        achieved = publisher.result()
        if must_complete:
            self.complete(system, before + count)
            missing = {"readings": 0, "alerts": 0}
        else:
            missing = self.caught_up(system, before + count, timeout=60)
        return {"rate": rate, "achieved_rate": achieved, "readings": count, "missing_a_minute_after": missing,
                "latency": summary(self.probe.latencies[alerts:]),
                "rss_mib": {name: {"first": s[0], "warm": s[len(s) // 10], "last": s[-1], "max": max(s)}
                            for name, s in rss.items() if s},  # warm: a tenth of the way in
                **self.cpu_per_100k(system, cpu, count)}

    def cpu(self, system: System) -> dict[str, float]:
        """CPU so far of the system's processes and of the broker and InfluxDB, which every system shares."""
        servers = {"mosquitto": self.stack.broker.process.pid, "influxd": self.stack.influxdb.process.pid}
        return {name: cpu_seconds(pid) for name, pid in {**system.processes, **servers}.items()}

    def cpu_per_100k(self, system: System, before: dict[str, float], readings: int) -> dict:
        now = self.cpu(system)
        return {"cpu_seconds_per_100k": {name: (now[name] - before[name]) / readings * 100_000 for name in now}}


def servers_bound(run: dict, cores: int) -> float:
    """The rate at which the broker's and InfluxDB's share of the work alone would use every core:
    a ceiling for the system however cheap its own processes were."""
    per_reading = sum(run["cpu_seconds_per_100k"][name] for name in SERVERS) / 100_000
    return cores / per_reading


def print_report(result: dict) -> None:
    systems = [name for name in ("ours", "node-red") if name in result]
    limit = result["broker_limit_per_second"]
    rows: list[tuple[str, ...]] = [("sustained readings/s stored in InfluxDB", *(
        f"{result[s]['flat_out']['stored_per_second']:,.0f}" for s in systems))]
    for run, label in (("at_5000", "5,000/s"), ("at_80_percent", "80% of sustained")):
        for q in ("p50", "p99", "max"):
            rows.append((f"reading -> alert {q} at {label} (ms)", *(
                f"{result[s][run]['latency'].get(q + '_ms', float('nan')):,.1f}" for s in systems)))
    rows.append(("CPU s per 100,000 readings at 5,000/s, the system's processes", *(
        f"{sum(v for k, v in result[s]['at_5000']['cpu_seconds_per_100k'].items() if k not in SERVERS):.1f}"
        for s in systems)))
    rows.append(("... with the broker and InfluxDB", *(
        f"{sum(result[s]['at_5000']['cpu_seconds_per_100k'].values()):.1f}" for s in systems)))
    rows.append(("achieved rate of the 5,000/s run", *(
        f"{result[s]['at_5000']['achieved_rate']:,.0f}" for s in systems)))
    rows.append(("peak RSS (MiB, largest process)", *(
        f"{max(result[s]['peak_rss_mib'].values()):.0f}" for s in systems)))
    if all("memory_run" in result[s] for s in systems):
        memory = {s: result[s]["memory_run"] for s in systems}
        rows.append(("memory run: readings/s, readings and alerts still missing a minute after it", *(
            f"{memory[s]['achieved_rate']:,.0f}; {memory[s]['missing_a_minute_after']['readings']:,}"
            f" and {memory[s]['missing_a_minute_after']['alerts']:,} of {memory[s]['readings']:,}"
            for s in systems)))
        rows.append(("RSS over the memory run, a tenth in -> end (MiB, by process)", *(
            ", ".join(f"{name} {r['warm']:.0f} -> {r['last']:.0f}" for name, r in memory[s]["rss_mib"].items())
            for s in systems)))
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
        print(f"{s}: the broker and InfluxDB alone, at their flat-out CPU per reading, would fill "
              f"{result['cores']} cores at {servers_bound(result[s]['flat_out'], result['cores']):,.0f} readings/s")
    for s in systems:
        cpu_by_process = result[s]["at_5000"]["cpu_seconds_per_100k"]
        per_process = ", ".join(f"{name} {cpu:.1f} s / {result[s]['peak_rss_mib'][name]:.0f} MiB"
                                for name, cpu in cpu_by_process.items() if name not in SERVERS)
        print(f"{s}, CPU per 100,000 readings and peak RSS by process: {per_process}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="readings per flat-out run")
    parser.add_argument("--seconds", type=float, default=20, help="length of each paced run")
    parser.add_argument("--memory-seconds", type=float, default=600,
                        help="length of the run at half the sustained rate whose RSS shows growth (0: skip)")
    parser.add_argument("--systems", default="ours,node-red", help="which systems to measure, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        stack = LocalStack(Path(state))
        stack.broker.extra_config = UNBOUNDED_QUEUES
        with stack:
            bench = Bench(stack, args.events, args.seconds, args.memory_seconds)
            progress("broker limit: mosquitto_pub -> mosquitto_sub")
            result = {"cores": os.cpu_count(), "broker_limit_per_second": bench.broker_limit()}
            systems = {"ours": Ours, "node-red": Peer}
            for name in args.systems.split(","):
                result[name] = bench.measure(systems[name](stack, Path(state)))
                save("pipeline", result)  # what is measured so far survives a later failure
    print_report(result)
    print(f"\n(all figures in {save('pipeline', result)})")


if __name__ == "__main__":
    main()
