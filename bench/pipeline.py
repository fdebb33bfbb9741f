"""The whole job, side by side: Node-RED and ours (and ours at another commit), on one machine and one load.

Run with `make bench` or `.venv/bin/python bench/pipeline.py [--rates 500,1000,2000,5000] [--seconds 5]
[--rounds 2] [--baseline DIR] [--events 200000] [--memory-seconds 600]`.
Starts its own Mosquitto and InfluxDB, then, round after round, measures each system on a ladder of
paced rates (`--rates`, `--seconds` each):

- ours: ingest, the threshold reactor and the sink as separate processes, as deployed;
- Node-RED (bench/nodered/flows.json): MQTT in, a threshold function emitting an alert
  message, every reading written to the same InfluxDB through node-red-contrib-influxdb;
- with `--baseline DIR`, ours again from the code in DIR (`git archive` of an earlier commit),
  storing into a database of its own: the same-run ratio against the previous code;
- with `--variant NAME=DIR` (repeatable), ours from the code in DIR under NAME: the current code
  with one change left out, say, to measure that change in the same run;
- bare (`--systems ours,node-red,bare`, bench/bare.py): ours' topology and transport with none of
  its own work (no validation, state or CloudEvents), the floor of what three processes cost.

The load is the device fleet's telemetry (`{"seq", "ts", "temperature"}` on
`devices/{id}/telemetry`, QoS 1) from one generator: every tenth reading of a device
is above the 28 Cel limit (staggered over the devices), the next one back below it. At each rate an independent
subscriber (`mosquitto_sub`) measures reading -> alert latency from the reading's own
timestamp, and CPU seconds per 100,000 readings are read from /proc for every process
of the system, the broker and InfluxDB; a rung ends once every reading is stored and
every alert has arrived. Optionally the broker's own limit (`--broker-limit`), a flat-out
run (`--events N`; its sustained rate is counted in InfluxDB, never inferred) and a run at
half that rate sampling every process's RSS (`--memory-seconds`). Progress goes to standard
error, the tables (with ratios) to standard output, and the figures to bench/results/pipeline.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.procstat import cpu_seconds, peak_rss_mib, rss_mib  # noqa: E402
from bench.report import save  # noqa: E402
from bench.services import stop, wait_online  # noqa: E402
from gateway.localstack import DATABASE, LocalStack  # noqa: E402
from gateway.transport import ClientConfig, Message, MqttTransport  # noqa: E402
from tests.helpers import influx_query  # noqa: E402

UNBOUNDED_QUEUES = "max_queued_messages 0\nmax_queued_bytes 0\n"  # a flat-out backlog must not be dropped
LIMIT = 28.0
DEVICES = 500
MODERATE_RATE = 5000  # bench/console.py's pace
MEMORY_RUN_SHARE = 0.5  # of the sustained rate: a pace each system keeps up for ten minutes
SERVERS = ("mosquitto", "influxd")
# The same job as the peer's: one alert per reading above the limit, and no device's readings shed at ingest.
SAME_JOB = {"CHOREO_REACTORS_THRESHOLD_ALERT_VERSIONS": "v1", "CHOREO_INGEST_BUDGET_UNKNOWN_RATE": "1000000",
            "CHOREO_INGEST_BUDGET_BURST": "1000000"}


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
        hot = (seq + device) % 10 == 0  # staggered: a tenth of every second's readings, even in a short run
        value = LIMIT + 2 if hot else LIMIT - 8
        self.hot += hot
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
    count_field: str  # a field every stored reading has: the bench counts it to know what is stored
    processes: dict[str, int] = field(default_factory=dict)  # name -> pid

    def reading_time(self, alert: dict) -> float:
        raise NotImplementedError


@dataclass
class Services(System):
    """A system of service processes (ingest, threshold, sink), started one by one and stopped together."""

    popen: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, process: subprocess.Popen) -> None:
        self.popen[name], self.processes[name] = process, process.pid

    def __exit__(self, *exc_info: object) -> None:
        stop(list(self.popen.values()))


def admin_influx(stack: LocalStack, database: str) -> dict[str, str]:
    """A sink's InfluxDB settings for a database of its own, through the admin account."""
    return {"CHOREO_INFLUX_DATABASE": database, "CHOREO_INFLUX_USERNAME": "admin",
            "CHOREO_INFLUX_PASSWORD": stack.credentials.influx_admin_password}


class Ours(Services):
    """Ours as deployed; with `code`, the services run from that directory (a snapshot of a commit); the
    baseline (an earlier commit, which stored a reading's `value` per metric) into a database of its own."""

    def __init__(self, stack: LocalStack, state: Path, code: Path | None = None, baseline: bool = False,
                 name: str = "ours") -> None:
        database, count_field = ("baseline", "value") if baseline else (DATABASE, "temperature")
        super().__init__("baseline" if baseline else name, "events/alert.raised.v1/+", database, count_field)
        self.stack, self.state, self.code = stack, state / self.name, code
        self.state.mkdir(exist_ok=True)
        if baseline:
            admin_query(stack, f"CREATE DATABASE {database}")

    def reading_time(self, alert: dict) -> float:
        return epoch(alert["time"])  # a fact's time is the time of the reading that caused it

    def env(self, account: str) -> dict[str, str]:
        # Session expiry 0: once stopped, ours leaves no session queueing the next system's load.
        env = {**os.environ, **self.stack.env(account), "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "0",
               "CHOREO_REACTORS_STATE_DIR": str(self.state / "reactors"),
               "CHOREO_SINK_SPOOL_DIR": str(self.state / "spool"), "CHOREO_MQTT_SESSION_EXPIRY": "0"}
        if self.database == DATABASE:  # the baseline's code may not know these settings
            env.update(SAME_JOB)
        if self.code is not None:
            env["PYTHONPATH"] = str(self.code)
            if account == "sink" and self.database != DATABASE:
                env.update(admin_influx(self.stack, self.database))
        return env

    def __enter__(self) -> Ours:
        try:
            for name, command in (("ingest", ["ingest"]), ("threshold", ["reactor", "threshold"]),
                                  ("sink", ["sink"])):
                with open(self.state / f"{name}.log", "a") as log:
                    self.start(name, subprocess.Popen(
                        [sys.executable, "-m", "gateway.cli", "--log-level", "WARNING", *command],
                        env=self.env(name), cwd=self.code, stdout=log, stderr=subprocess.STDOUT))
            for name, pid in self.processes.items():
                wait_online(self.stack, name, [pid])
        except BaseException:
            self.__exit__()
            raise
        return self


class Peer(System):
    def __init__(self, stack: LocalStack, state: Path) -> None:
        from bench.nodered import ALERTS, NodeRed  # only when measured: it needs Node.js

        super().__init__("node-red", ALERTS + "+", "nodered", "value")
        admin_query(stack, f"CREATE DATABASE {self.database}")
        self.node_red = NodeRed.for_stack(stack, database=self.database, alert_above=LIMIT)

    def reading_time(self, alert: dict) -> float:
        return epoch(alert["ts"])  # copied from the reading by the flow

    def __enter__(self) -> Peer:
        self.node_red.__enter__()
        self.processes["node-red"] = self.node_red.pid
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.node_red.__exit__(*exc_info)


class Bare(Services):
    """The floor (bench/bare.py): ours' topology and transport, none of ours' own work."""

    def __init__(self, stack: LocalStack, state: Path) -> None:
        super().__init__("bare", "events/alert.raised.v1/+", "bare", "temperature")
        self.stack, self.log = stack, state / "bare.log"
        admin_query(stack, f"CREATE DATABASE {self.database}")

    def reading_time(self, alert: dict) -> float:
        return epoch(alert["time"])

    def env(self, account: str) -> dict[str, str]:
        env = {**os.environ, **self.stack.env(account), "BENCH_BARE_LIMIT": str(LIMIT)}
        if account == "sink":
            env.update(admin_influx(self.stack, self.database))
        return env

    def __enter__(self) -> Bare:
        try:
            for name in ("ingest", "threshold", "sink"):
                with open(self.log, "a") as log:
                    process = subprocess.Popen([sys.executable, str(HERE / "bare.py"), name], env=self.env(name),
                                               stdout=subprocess.PIPE, stderr=log, text=True)
                self.start(name, process)
                if not said_ready(process, timeout=60):
                    raise RuntimeError(f"bare {name} did not start; see {self.log}")
        except BaseException:
            self.__exit__()
            raise
        return self


def said_ready(process: subprocess.Popen, timeout: float) -> bool:
    """Whether the process printed `ready` (bench/bare.py does, once subscribed) within `timeout` seconds."""
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], timeout)
    return bool(readable) and process.stdout.readline().strip() == "ready"


def admin_query(stack: LocalStack, statement: str, database: str | None = None) -> list[dict]:
    return influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password, statement, database)


# -- the runs ------------------------------------------------------------------------------
class Bench:
    def __init__(self, stack: LocalStack, events: int = 0, seconds: float = 5, memory_seconds: float = 0,
                 rates: tuple[float, ...] = (MODERATE_RATE,)) -> None:
        self.stack, self.rates, self.seconds = stack, rates, seconds
        self.events, self.memory_seconds = events, memory_seconds
        self.password = stack.credentials.mqtt["admin"]
        self.load = Load(stack.broker.port, self.password)

    def stored(self, system: System) -> int:
        rows = admin_query(self.stack, f'SELECT COUNT("{system.count_field}") FROM "readings"', system.database)
        return rows[0]["count"] if rows else 0

    def broker_limit(self, count: int) -> float:
        """mosquitto_pub -l and mosquitto_sub moving the same telemetry; the rate the subscriber saw."""
        auth = ["-h", "127.0.0.1", "-p", str(self.stack.broker.port), "-u", "admin", "-P", self.password]
        subscriber = ["mosquitto_sub", *auth, "-i", "bench-limit", "-q", "1", "-t", "devices/+/telemetry"]
        persistent = ["-V", "mqttv5", "-c", "-x", "600"]
        # the session exists before any message
        subprocess.run([*subscriber, *persistent, "-E"], check=True, timeout=30)
        with tempfile.TemporaryFile() as arrivals:
            sub = subprocess.Popen([*subscriber, *persistent, "-C", str(count), "-F", "%U"], stdout=arrivals)
            # mosquitto_pub quits early on a wrapped message id once its input ends: keep the input open
            pub = subprocess.Popen(["mosquitto_pub", *auth, "-q", "1", "-M", "1000", "-t", "devices/bench-0/telemetry",
                                    "-l"], stdin=subprocess.PIPE)
            try:
                pub.stdin.write(b"".join(self.load.next_message().payload + b"\n" for _ in range(count)))
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
            result: dict = {"ladder": {}}
            for rate in self.rates:
                progress(f"{system.name}: {rate:,.0f} readings/s for {self.seconds:.0f} s")
                result["ladder"][str(int(rate))] = self.paced(system, rate, self.seconds)
            if self.events:
                progress(f"{system.name}: flat out, {self.events:,} readings")
                result["flat_out"] = self.flat_out(system)
                sustained = result["flat_out"]["stored_per_second"]
                progress(f"{system.name}: {sustained:,.0f} readings/s")
                if self.memory_seconds:
                    progress(f"{system.name}: memory, {MEMORY_RUN_SHARE:.0%} of sustained for "
                             f"{self.memory_seconds:.0f} s")
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
            time.sleep(0.1)  # a bench may poll
        deadline = time.monotonic() + min(timeout, 60)
        while missing()["alerts"] and time.monotonic() < deadline:
            time.sleep(0.1)
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
        missing a minute after the end are reported instead of failing the bench. CPU is counted
        until everything is stored, so work left over from the run is not left out."""
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


# -- the report ----------------------------------------------------------------------------
def own_cpu(run: dict) -> float:
    return sum(v for k, v in run["cpu_seconds_per_100k"].items() if k not in SERVERS)


def rung_figures(runs: list[dict]) -> dict[str, float]:
    """The median over rounds of one system's figures at one rate."""
    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2] if len(ordered) % 2 else sum(ordered[len(ordered) // 2 - 1:][:2]) / 2

    return {"achieved": median([r["achieved_rate"] for r in runs]),
            "p50": median([r["latency"].get("p50_ms", float("nan")) for r in runs]),
            "p99": median([r["latency"].get("p99_ms", float("nan")) for r in runs]),
            "own": median([own_cpu(r) for r in runs]),
            **{server: median([r["cpu_seconds_per_100k"][server] for r in runs]) for server in SERVERS}}


def ladder_table(result: dict) -> list[str]:
    systems = [s for s, runs in result["rounds"].items() if runs]
    rates = sorted({rate for s in systems for run in result["rounds"][s] for rate in run["ladder"]}, key=float)
    lines = ["| rate | system | achieved/s | p50 / p99 ms | own CPU s per 100k | broker | InfluxDB |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    ratios = []
    for rate in rates:
        figures = {s: rung_figures([run["ladder"][rate] for run in result["rounds"][s] if rate in run["ladder"]])
                   for s in systems}
        for s, f in figures.items():
            lines.append(f"| {int(rate):,}/s | {s} | {f['achieved']:,.0f} | {f['p50']:.1f} / {f['p99']:.1f} | "
                         f"{f['own']:.1f} | {f['mosquitto']:.1f} | {f['influxd']:.1f} |")
        for other in (s for s in systems if s != "ours"):
            if "ours" in figures:
                o, b = figures["ours"], figures[other]
                ratios.append(f"{int(rate):,}/s, ours / {other}: own CPU {o['own'] / b['own']:.2f}, broker "
                              f"{o['mosquitto'] / b['mosquitto']:.2f}, InfluxDB {o['influxd'] / b['influxd']:.2f}, "
                              f"p99 {o['p99'] / b['p99']:.2f}")
    return lines + [""] + ratios


def print_report(result: dict) -> None:
    print(f"\nmedians over {result['round_count']} round(s) of {result['seconds']:.0f} s per rate; CPU in seconds "
          "per 100,000 readings (own: the system's processes)\n")
    print("\n".join(ladder_table(result)))
    if "broker_limit_per_second" in result:
        print(f"\nbroker limit (mosquitto_pub -> mosquitto_sub, QoS 1): {result['broker_limit_per_second']:,.0f} msg/s")
    for s, runs in result["rounds"].items():
        for run in runs:
            if "flat_out" in run:
                flat = run["flat_out"]
                print(f"{s}: flat out {flat['stored_per_second']:,.0f} readings/s, own CPU {own_cpu(flat):.1f} s per "
                      f"100k; the broker and InfluxDB alone would fill {result['cores']} cores at "
                      f"{servers_bound(flat, result['cores']):,.0f} readings/s")
            if "memory_run" in run:
                memory = run["memory_run"]
                print(f"{s}: memory run at {memory['achieved_rate']:,.0f}/s, RSS a tenth in -> end: " + ", ".join(
                    f"{name} {r['warm']:.0f} -> {r['last']:.0f} MiB" for name, r in memory["rss_mib"].items())
                    + f"; missing a minute after: {memory['missing_a_minute_after']}")
            print(f"{s}: peak RSS " + ", ".join(f"{n} {v:.0f} MiB" for n, v in run["peak_rss_mib"].items()))


def servers_bound(run: dict, cores: int) -> float:
    """The rate at which the broker's and InfluxDB's share of the work alone would use every core:
    a ceiling for the system however cheap its own processes were."""
    per_reading = sum(run["cpu_seconds_per_100k"][name] for name in SERVERS) / 100_000
    return cores / per_reading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="500,1000,2000,5000", help="the ladder of paced rates, comma-separated")
    parser.add_argument("--seconds", type=float, default=5, help="length of each paced rung")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every system, alternating")
    parser.add_argument("--systems", default="ours,node-red", help="which systems to measure, comma-separated")
    parser.add_argument("--baseline", type=Path, help="also measure ours from the code in this directory")
    parser.add_argument("--code", type=Path, help="run ours from the code in this directory (default: this tree)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=DIR",
                        help="also measure ours from the code in DIR under NAME (a change left out, say)")
    parser.add_argument("--events", type=int, default=0, help="readings of a flat-out run after the ladder (0: none)")
    parser.add_argument("--memory-seconds", type=float, default=0,
                        help="length of a run at half the flat-out rate whose RSS shows growth (0: none)")
    parser.add_argument("--broker-limit", type=int, default=0,
                        help="messages of a mosquitto_pub -> mosquitto_sub run first (0: none)")
    args = parser.parse_args()
    variants = {name: Path(directory).resolve() for name, _, directory in (v.partition("=") for v in args.variant)}
    names = args.systems.split(",") + list(variants) + (["baseline"] if args.baseline else [])
    with tempfile.TemporaryDirectory() as state:
        stack = LocalStack(Path(state))
        stack.broker.extra_config = UNBOUNDED_QUEUES
        with stack:
            bench = Bench(stack, args.events, args.seconds, args.memory_seconds,
                          tuple(float(r) for r in args.rates.split(",")))
            result: dict = {"cores": os.cpu_count(), "seconds": args.seconds, "round_count": args.rounds,
                            "rounds": {name: [] for name in names}}
            if args.broker_limit:
                progress("broker limit: mosquitto_pub -> mosquitto_sub")
                result["broker_limit_per_second"] = bench.broker_limit(args.broker_limit)
            systems = {"ours": lambda: Ours(stack, Path(state), args.code and args.code.resolve()),
                       "node-red": lambda: Peer(stack, Path(state)),
                       "bare": lambda: Bare(stack, Path(state)),
                       "baseline": lambda: Ours(stack, Path(state), args.baseline.resolve(), baseline=True),
                       **{name: (lambda name=name, code=code: Ours(stack, Path(state), code, name=name))
                          for name, code in variants.items()}}
            for round_ in range(args.rounds):
                for name in names:
                    progress(f"round {round_ + 1}: {name}")
                    result["rounds"][name].append(bench.measure(systems[name]()))
                    save("pipeline", result)  # what is measured so far survives a later failure
    print_report(result)
    print(f"\n(all figures in {save('pipeline', result)})")


if __name__ == "__main__":
    main()
