"""What a service costs with no traffic: CPU share of one core over a quiet interval, each service as deployed.

Run with `.venv/bin/python bench/idle.py [--seconds 10]`. Starts its own Mosquitto and InfluxDB, then
ingest, the sink and every built-in reactor as processes, waits until each has announced itself
online, lets them settle, and reads each process's CPU time from /proc at the start and the end of
`--seconds` of silence. The target is under 1% of a core per service.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procstat import cpu_seconds  # noqa: E402
from bench.report import print_table, save  # noqa: E402
from bench.services import stop, wait_online  # noqa: E402
from gateway.localstack import LocalStack  # noqa: E402
from gateway.plugins import build_reactors  # noqa: E402
from gateway.settings import load_settings  # noqa: E402

SETTLE_SECONDS = 3  # start-up work (subscriptions, retained manifests, the first counters) is not idling
TARGET = 1.0  # % of a core


def services() -> dict[str, list[str]]:
    reactors = sorted(reactor.name for reactor in build_reactors(load_settings({})))
    return {"ingest": ["ingest"], "sink": ["sink"], **{name: ["reactor", name] for name in reactors}}


def idle_shares(stack: LocalStack, state: Path, seconds: float) -> dict[str, float]:
    """% of one core each service used over `seconds` without traffic."""
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in services().items():
            env = {**os.environ, **stack.env(name), "CHOREO_REACTORS_STATE_DIR": str(state / "reactors"),
                   "CHOREO_SINK_SPOOL_DIR": str(state / "spool")}
            with open(state / f"{name}.log", "w") as log:
                processes[name] = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--log-level", "WARNING",
                                                    *command], env=env, stdout=log, stderr=subprocess.STDOUT)
        for name, process in processes.items():
            wait_online(stack, name, [process.pid])
        time.sleep(SETTLE_SECONDS)  # a bench may wait: what follows is the quiet it measures
        before = {name: cpu_seconds(process.pid) for name, process in processes.items()}
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        return {name: (cpu_seconds(process.pid) - before[name]) / elapsed * 100 for name, process in processes.items()}
    finally:
        stop(list(processes.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="length of the quiet interval measured")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state, LocalStack(Path(state)) as stack:
        shares = idle_shares(stack, Path(state), args.seconds)
    print_table(f"CPU with no traffic over {args.seconds:.0f} s (% of one core; target under {TARGET:.0f}%)",
                [(name, f"{share:.2f}%") for name, share in shares.items()])
    print(f"\n(all figures in {save('idle', {'seconds': args.seconds, 'percent_of_a_core': shares})})")


if __name__ == "__main__":
    main()
