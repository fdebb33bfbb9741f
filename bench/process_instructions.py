"""Instructions per message of a whole service process on a real broker: ours, and the bare floor.

Run with `.venv/bin/python bench/process_instructions.py [--services ingest,threshold,sink]
[--systems ours,bare] [--code NAME=DIR ...] [--small 1000] [--large 4000]`.
bench/instructions.py counts a service's own work in process; this counts everything its process
executes for a message: receiving it from Mosquitto, the event loop, acknowledging, publishing what
it makes and, for the sink, writing to InfluxDB. Each service runs under `valgrind --tool=callgrind`
(as deployed, `python -m gateway.cli ...`; bare: bench/bare.py; `--code NAME=DIR`: ours from another
tree) against its own Mosquitto and InfluxDB, is sent `--small` and then, in a second run, `--large`
messages, and is stopped once the last has gone through (its alert, reading or point seen). The
difference divided by the difference in messages is what one message costs; start-up, shutdown and
imports cancel out. Under valgrind a service runs some fifty times slower, so messages queue and
each wake-up handles many: the figure leaves out most of the per-wake-up cost that a paced run pays.
Slow: about two minutes per service and system. Needs valgrind (scripts/setup.sh installs it).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.hot_paths import reading_events, telemetry  # noqa: E402
from bench.pipeline import LIMIT, SAME_JOB, UNBOUNDED_QUEUES, admin_influx, admin_query, said_ready  # noqa: E402
from bench.report import print_table, save  # noqa: E402
from gateway.events import Measurement, ReadingV1, new_event  # noqa: E402
from gateway.localstack import DATABASE, LocalStack  # noqa: E402
from gateway.service import event_message  # noqa: E402
from gateway.transport import ClientConfig, Message, MqttTransport  # noqa: E402
from tests.helpers import MqttObserver, wait_for  # noqa: E402

COLLECTED = re.compile(r"Collected : (\d+)")
COMMANDS = {"ingest": ["ingest"], "threshold": ["reactor", "threshold"], "sink": ["sink"]}


def last_reading(device: str) -> Message:
    data = ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=LIMIT + 5)])
    return event_message(new_event(data, source=f"device/{device}", subject=device))


def as_bare(message: Message) -> Message:
    """A reading event as bench/bare.py's ingest makes it."""
    event = json.loads(message.payload)
    value = event["data"]["measurements"][0]["value"]
    bare = {"subject": event["subject"], "time": event["time"], "temperature": value}
    return Message(message.topic, json.dumps(bare).encode())


def messages(service: str, system: str, count: int, last: str) -> list[Message]:
    """`count` messages for `service`, and one from device `last` whose outcome says all have gone through."""
    if service == "ingest":
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        payload = json.dumps({"seq": 1, "ts": now, "temperature": LIMIT + 5})
        return telemetry(count) + [Message(f"devices/{last}/telemetry", payload.encode())]
    events = reading_events(count) + [last_reading(last)]
    return [as_bare(m) for m in events] if system == "bare" else events


class Run:
    """One service under valgrind, one batch of messages through it."""

    def __init__(self, stack: LocalStack, state: Path, service: str, system: str, code: Path | None) -> None:
        self.stack, self.state, self.service, self.system = stack, state, service, system
        self.database = "bare" if system == "bare" else DATABASE
        env = {**os.environ, **stack.env(service), "CHOREO_MQTT_SESSION_EXPIRY": "0",
               "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "0", **SAME_JOB, "BENCH_BARE_LIMIT": str(LIMIT)}
        if system == "bare":
            command = [sys.executable, str(HERE / "bare.py"), service]
            env.update(admin_influx(stack, self.database))
        else:
            command = [sys.executable, "-m", "gateway.cli", "--log-level", "WARNING", *COMMANDS[service]]
            env["PYTHONPATH"] = str(code or HERE.parent)
        self.command, self.env, self.cwd = command, env, code or HERE.parent

    def instructions(self, count: int) -> int:
        """The instructions of one run over `count` messages, in a fresh state of its own."""
        fresh = f"{time.monotonic_ns()}"
        last = f"bench-last-{fresh}"
        env = {**self.env, "CHOREO_REACTORS_STATE_DIR": str(self.state / f"reactors-{fresh}"),
               "CHOREO_SINK_SPOOL_DIR": str(self.state / f"spool-{fresh}")}
        password = self.stack.credentials.mqtt["admin"]
        with MqttObserver(self.stack.broker.port, "admin", password, f"watch-{fresh}") as observer:
            observer.subscribe("choreo/services/#")
            observer.subscribe(f"events/+/{last}")
            valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
            log = self.state / f"{self.service}-{fresh}.log"  # a file: a full pipe would stall the service
            with open(log, "w") as errors:
                process = subprocess.Popen([*valgrind, *self.command], env=env, cwd=self.cwd,
                                           stdout=subprocess.PIPE, stderr=errors, text=True)
            try:
                self.wait(process, log, lambda: self.ready(process, observer), "to start")
                asyncio.run(publish(self.stack, messages(self.service, self.system, count, last)))
                self.wait(process, log, lambda: self.through(observer, last), "the last message to go through")
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=600)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        found = COLLECTED.search(log.read_text(errors="replace"))
        if found is None:
            raise SystemExit(f"valgrind printed no count:\n{log.read_text(errors='replace')[-2000:]}")
        return int(found.group(1))

    def ready(self, process: subprocess.Popen, observer: MqttObserver) -> bool:
        if self.system == "bare":
            return said_ready(process, timeout=1)
        return any(m["status"] == "online" for m in observer.manifests(self.service))

    def through(self, observer: MqttObserver, last: str) -> bool:
        if self.service == "ingest":
            return bool(observer.on(f"events/reading.v1/{last}"))
        if self.service == "threshold":
            return bool(observer.on(f"events/alert.raised.v1/{last}"))
        return bool(admin_query(self.stack, f"SELECT COUNT(*) FROM readings WHERE device = '{last}'", self.database))

    def wait(self, process: subprocess.Popen, log: Path, condition: Callable[[], bool], what: str) -> None:
        def done_or_dead() -> bool:
            if process.poll() is not None:
                raise SystemExit(f"{self.system} {self.service} exited waiting for {what}:\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")
            return condition()

        wait_for(done_or_dead, 1800, f"{self.system} {self.service}: {what}", interval=0.5)


async def publish(stack: LocalStack, batch: list[Message]) -> None:
    config = ClientConfig(f"load-{time.monotonic_ns()}", port=stack.broker.port, username="admin",
                          password=stack.credentials.mqtt["admin"], clean_start=True, session_expiry=0)
    async with MqttTransport(config) as transport:
        for message in batch:
            transport.publish(message)
        assert await transport.flush(600), "the broker did not take the messages"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", default="ingest,threshold,sink")
    parser.add_argument("--systems", default="ours,bare", help="ours and bare (the NAMEs of --code are added)")
    parser.add_argument("--code", action="append", default=[], metavar="NAME=DIR", help="ours from the code in DIR")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=4000)
    args = parser.parse_args()
    trees = {name: Path(directory).resolve() for name, _, directory in (c.partition("=") for c in args.code)}
    systems = list(dict.fromkeys(args.systems.split(",") + list(trees)))
    unknown = set(systems) - {"ours", "bare", *trees}
    if unknown:
        parser.error(f"--systems: {', '.join(sorted(unknown))} is neither ours, bare nor a NAME of --code")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory)
        stack = LocalStack(state / "stack")
        stack.broker.extra_config = UNBOUNDED_QUEUES  # a slow consumer's backlog must not be dropped
        with stack:
            admin_query(stack, "CREATE DATABASE bare")
            for service in args.services.split(","):
                for system in systems:
                    run = Run(stack, state, service, "bare" if system == "bare" else "ours", trees.get(system))
                    counts = [run.instructions(n) for n in (args.small, args.large)]
                    figures[f"{service} {system}"] = (counts[1] - counts[0]) / (args.large - args.small)
                    print(f"{service} {system}: {figures[f'{service} {system}']:,.0f} instructions per message",
                          file=sys.stderr, flush=True)
    print_table(f"instructions per message of the whole process ({args.large:,} messages against {args.small:,})",
                [(name, f"{figure:,.0f}") for name, figure in figures.items()])
    print(f"\n(all figures in {save('process_instructions', figures)})")


if __name__ == "__main__":
    main()
