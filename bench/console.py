"""What the web console costs: the pipeline at 5,000 readings/s with the console open, against the same run without it.

Run with `.venv/bin/python bench/console.py [--seconds 20] [--rounds 2]`. Starts its own Mosquitto and
InfluxDB and ours as deployed (ingest, the threshold reactor and the sink as processes, bench/pipeline.py's
`Ours`), then alternates paced runs without and with `choreo console` and one browser's worth of live
stream (a client reading `/api/stream` as the page does). For each run it prints the readings stored,
reading -> alert latency, ours' CPU and the console's CPU per 100,000 readings, and how many facts the
console received and how many it skipped for the client (it samples at most 50 facts/s per client).
The figures also go to bench/results/console.json.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import DEVICES, MODERATE_RATE, UNBOUNDED_QUEUES, Bench, LatencyProbe, Ours, progress  # noqa: E402
from bench.procstat import cpu_seconds  # noqa: E402
from bench.report import save  # noqa: E402
from bench.services import stop  # noqa: E402
from gateway.localstack import LocalStack, free_ports  # noqa: E402
from tests.helpers import wait_for  # noqa: E402


class StreamReader(threading.Thread):
    """One open page: reads the console's live stream and counts the facts and skipped notes it gets."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.facts, self.skipped_notes = url, 0, 0
        self.stopping = threading.Event()

    def run(self) -> None:
        with urllib.request.urlopen(self.url, timeout=30) as stream:
            for line in stream:
                if self.stopping.is_set():
                    return
                if line.startswith(b"event: fact"):
                    self.facts += 1
                elif line.startswith(b"event: skipped"):
                    self.skipped_notes += 1


class Console:
    """`choreo console` as a process, with one client on its live stream."""

    def __init__(self, stack: LocalStack, state: Path) -> None:
        self.stack, self.state = stack, state
        [self.port] = free_ports(1)

    def __enter__(self) -> Console:
        env = {**os.environ, **self.stack.env("monitor")}
        with open(self.state / "console.log", "w") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--log-level", "WARNING",
                                             "console", "--port", str(self.port)], env=env, stdout=log,
                                            stderr=subprocess.STDOUT)
        wait_for(self._answers, 30, "the console to answer")
        self.reader = StreamReader(f"http://127.0.0.1:{self.port}/api/stream")
        self.reader.start()
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/map", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def __exit__(self, *exc_info: object) -> None:
        self.reader.stopping.set()
        stop([self.process])


def paced_run(bench: Bench, system: Ours, seconds: float, console: Console | None) -> dict:
    before = cpu_seconds(console.process.pid) if console else 0.0
    result = bench.paced(system, MODERATE_RATE, seconds)
    if console:
        result["console_cpu_seconds_per_100k"] = (cpu_seconds(console.process.pid) - before) / result["readings"] * 1e5
        result["stream_facts"] = console.reader.facts
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each paced run")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs, without then with the console")
    args = parser.parse_args()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as state_dir:
        state = Path(state_dir)
        stack = LocalStack(state / "stack", [f"bench-{n}" for n in range(DEVICES)])
        stack.broker.extra_config = UNBOUNDED_QUEUES
        with stack, Ours(stack, state) as system:
            bench = Bench(stack, events=0, seconds=args.seconds)
            with LatencyProbe(stack, system.alert_topic, system.reading_time) as probe:
                bench.probe, bench.hot_before = probe, bench.load.hot
                bench.warm_up(system)
                for round_ in range(args.rounds):
                    progress(f"round {round_ + 1}: without the console")
                    runs.append({"console": False, **paced_run(bench, system, args.seconds, None)})
                    progress(f"round {round_ + 1}: with the console and one open stream")
                    with Console(stack, state) as console:
                        runs.append({"console": True, **paced_run(bench, system, args.seconds, console)})
    print_report(runs)
    save("console", {"runs": runs})


def print_report(runs: list[dict]) -> None:
    print(f"\nours at {MODERATE_RATE:,} readings/s, alternating runs without and with the console")
    print("| console | achieved/s | p50 / p99 ms | ours CPU s/100k | console CPU s/100k | stream facts |")
    print("|---|---:|---:|---:|---:|---:|")
    for run in runs:
        ours = sum(v for k, v in run["cpu_seconds_per_100k"].items() if k in ("ingest", "threshold", "sink"))
        latency = run["latency"]
        console_cpu = f"{run['console_cpu_seconds_per_100k']:.1f}" if run["console"] else "-"
        print(f"| {'open' if run['console'] else 'none'} | {run['achieved_rate']:,.0f} | "
              f"{latency['p50_ms']:.1f} / {latency['p99_ms']:.1f} | {ours:.1f} | {console_cpu} | "
              f"{run.get('stream_facts', '-')} |")


if __name__ == "__main__":
    main()
