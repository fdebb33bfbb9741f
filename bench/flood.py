"""One device floods, 500 others publish at a steady pace: what ingest's per-device admission costs and buys.

Run with `make bench` or `.venv/bin/python bench/flood.py [--rate 500] [--seconds 10] [--rounds 2]`.

1. The cost of a shed message against a processed one inside ingest, from its arrival at the
   transport (the in-memory one; alternating batches of each, so both see the same machine load).
2. On a real Mosquitto with ingest, the threshold reactor and the sink as processes (bench/pipeline.py's
   `Ours`): the fleet's telemetry at `--rate` readings/s (bench/pipeline.py's `Load`, every tenth reading
   of a device above the limit) while an independent `mosquitto_sub` times reading -> alert, first
   without a flood and then while one device publishes as fast as `mosquitto_pub -l` goes (at the lowest
   CPU priority) at QoS 0 and at QoS 1; each round once with ingest's default budgets ("admission") and
   once with them lifted as bench/pipeline.py runs it ("no admission"). For each phase: the others'
   p50 / p99, the flood messages ingest shed per second (from its counters) and each process's share
   of a core.
Figures go to standard output and bench/results/flood.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import DEVICES, LatencyProbe, Load, Ours, Publishing, epoch, progress, summary  # noqa: E402
from bench.procstat import cpu_seconds  # noqa: E402
from bench.report import print_table, save  # noqa: E402
from gateway.credentials import device_password  # noqa: E402
from gateway.ingest.service import IngestService  # noqa: E402
from gateway.localstack import LocalStack  # noqa: E402
from gateway.transport import ClientConfig, MemoryBroker, MemoryTransport, Message  # noqa: E402
from tests.helpers import MqttObserver, wait_for  # noqa: E402

FLOOD = "flood-1"
FLOOD_PAYLOAD = '{"seq":1,"temperature":21.5}'
# The flood runs at the lowest CPU priority: a device elsewhere takes none of the gateway's CPU; on this
# shared machine it gets whatever the gateway leaves, which is still more than any budget.
NICEST = ["nice", "-n", "19"]


# -- 1. the cost of a shed message ----------------------------------------------------------
async def cost_per_message(batch: int = 20_000, rounds: int = 5) -> dict:
    """Microseconds per message from arrival at ingest's transport: shed (over budget, refused as it
    arrives) and processed (admitted, queued, received, decoded and published)."""
    async with MemoryTransport(MemoryBroker(), ClientConfig("ingest")) as transport:
        service = IngestService(transport)
        payload = FLOOD_PAYLOAD.encode()
        times: dict[str, list[float]] = {"shed": [], "processed": []}
        for _ in range(rounds):
            for kind in times:
                messages = [Message(f"devices/{kind}-{n if kind == 'processed' else 0}/telemetry", payload)
                            for n in range(batch)]
                started = time.perf_counter()
                for message in messages:
                    transport.offer(message)
                while (delivery := await transport.receive(0)) is not None:
                    service.process(delivery)
                times[kind].append((time.perf_counter() - started) / batch * 1e6)
                await asyncio.sleep(0)  # let the in-memory publishes settle between batches
        assert service.counts["shed"] >= (batch - 20) * rounds, "the shed batches were not shed"
    best = {kind: min(values) for kind, values in times.items()}
    return {"shed_us": best["shed"], "processed_us": best["processed"],
            "processed_per_shed": best["processed"] / best["shed"]}


# -- 2. the flood on a real broker ----------------------------------------------------------
class Flood:
    """`mosquitto_pub -l` from the flooding device's own account, fed valid telemetry without end."""

    def __init__(self, stack: LocalStack, qos: int) -> None:
        self.command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(stack.broker.device_port), "-u", FLOOD,
                        "-i", FLOOD, "-P", device_password(stack.credentials.fleet_secret, FLOOD),
                        "-t", f"devices/{FLOOD}/telemetry", "-q", str(qos), "-l"]

    def __enter__(self) -> Flood:
        self.lines = subprocess.Popen([*NICEST, "yes", FLOOD_PAYLOAD], stdout=subprocess.PIPE)
        self.publisher = subprocess.Popen([*NICEST, *self.command], stdin=self.lines.stdout, stderr=subprocess.DEVNULL)
        self.lines.stdout.close()  # type: ignore[union-attr]  # mosquitto_pub holds the pipe now
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in (self.publisher, self.lines):
            process.terminate()
            process.wait(10)


class IngestCounters:
    """Ingest's retained counter reports (every 5 s), as an independent client receives them."""

    def __init__(self, stack: LocalStack) -> None:
        self.observer = MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"],
                                     "bench-flood-counters")

    def __enter__(self) -> IngestCounters:
        self.observer.__enter__()
        self.observer.subscribe("choreo/services/ingest/counters", qos=0)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.observer.__exit__()

    def received(self) -> int:
        return len(self.observer.on("choreo/services/ingest/counters"))

    def shed_per_second(self, since: int) -> float | None:
        """From the first to the last report received after report number `since`."""
        documents = [json.loads(m.payload) for m in self.observer.on("choreo/services/ingest/counters")[since:]]
        if len(documents) < 2:
            return None
        seconds = epoch(documents[-1]["time"]) - epoch(documents[0]["time"])
        return (documents[-1]["counters"].get("shed", 0) - documents[0]["counters"].get("shed", 0)) / seconds


def phase(system: Ours, load: Load, probe: LatencyProbe, counters: IngestCounters, rate: float, seconds: float,
          flood: Flood | None) -> dict:
    """The load at `rate` for `seconds`, with or without the flood; what the others saw."""
    alerts, hot, reports = len(probe.latencies), load.hot, counters.received()
    processes = {**system.processes, "mosquitto": system.stack.broker.process.pid}
    cpu = {name: cpu_seconds(pid) for name, pid in processes.items()}
    started = time.monotonic()
    if flood:
        flood.__enter__()
    try:
        Publishing(load, int(rate * seconds), rate).result()
    finally:
        if flood:
            flood.__exit__()
    elapsed = time.monotonic() - started
    shed = counters.shed_per_second(reports)
    cpu_share = {name: (cpu_seconds(pid) - cpu[name]) / elapsed for name, pid in processes.items()}
    wait_for(lambda: len(probe.latencies) - alerts >= load.hot - hot, 120, "every alert of the phase")
    return {"latency": summary(probe.latencies[alerts:]), "shed_per_second": shed, "cpu_share": cpu_share}


class WithBudgets(Ours):
    """Ours with ingest's default budgets; bench/pipeline.py lifts them, so that its one load generator's
    flat-out run is not shed, and that is the system without admission here."""

    def env(self, account: str) -> dict[str, str]:
        env = super().env(account)
        for lifted in ("CHOREO_INGEST_BUDGET_UNKNOWN_RATE", "CHOREO_INGEST_BUDGET_BURST"):
            env.pop(lifted, None)
        return env


SYSTEMS = {"admission": WithBudgets, "no admission": Ours}
PHASES = ("quiet", "flood_qos0", "flood_qos1")


def run(rate: float, seconds: float, rounds: int) -> dict:
    result: dict = {"rate": rate, "seconds": seconds, "devices": DEVICES}
    progress("cost of a shed message inside ingest")
    result["cost"] = asyncio.run(cost_per_message())
    result["phases"] = {system: {name: [] for name in PHASES} for system in SYSTEMS}
    with tempfile.TemporaryDirectory() as state, LocalStack(Path(state), [FLOOD]) as stack, \
            IngestCounters(stack) as counters:
        load = Load(stack.broker.port, stack.credentials.mqtt["admin"])
        for round_ in range(rounds):
            for system_name, system_class in SYSTEMS.items():
                with system_class(stack, Path(state), name=system_name.replace(" ", "-")) as system, \
                        LatencyProbe(stack, system.alert_topic, system.reading_time) as probe:
                    asyncio.run(load.publish(DEVICES))  # one reading per device through, before measuring
                    for name, flood in zip(PHASES, (None, Flood(stack, 0), Flood(stack, 1)), strict=True):
                        progress(f"round {round_ + 1}: {system_name}, {name}")
                        runs = result["phases"][system_name][name]
                        runs.append(phase(system, load, probe, counters, rate, seconds, flood))
                        save("flood", result)
    return result


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def print_report(result: dict) -> None:
    cost = result["cost"]
    print_table("inside ingest: microseconds per message", [
        ("shed", f"{cost['shed_us']:.2f}"), ("processed", f"{cost['processed_us']:.2f}"),
        ("processed / shed", f"{cost['processed_per_shed']:.1f}x")])
    for system, phases in result["phases"].items():
        quiet_p99 = median([r["latency"]["p99_ms"] for r in phases["quiet"]])
        rows = []
        for name, runs in phases.items():
            p50 = median([r["latency"]["p50_ms"] for r in runs])
            p99 = median([r["latency"]["p99_ms"] for r in runs])
            shed = [r["shed_per_second"] for r in runs if r["shed_per_second"]]
            cpu = ", ".join(f"{process} {median([r['cpu_share'][process] for r in runs]):.0%}"
                            for process in runs[0]["cpu_share"])
            rows.append((name, f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({p99 / quiet_p99:.1f}x quiet); CPU: {cpu}"
                               + (f"; shed {median(shed):,.0f}/s" if shed else "")))
        print_table(f"{system}: {result['devices']} devices at {result['rate']:,.0f} readings/s, reading -> alert "
                    f"(median of {len(phases['quiet'])} rounds)", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500, help="the others' readings per second")
    parser.add_argument("--seconds", type=float, default=12, help="length of each phase (two counter reports fit)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of quiet, QoS 0 flood, QoS 1 flood")
    args = parser.parse_args()
    result = run(args.rate, args.seconds, args.rounds)
    print_report(result)
    print(f"\n(all figures in {save('flood', result)})")


if __name__ == "__main__":
    main()
