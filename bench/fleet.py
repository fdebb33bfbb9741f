"""Fleet scale: one process simulating N devices, each with its own broker connection.

Run with `make bench` or `.venv/bin/python bench/fleet.py [--devices 2000] [--interval 0.2] [--seconds 30]`.
Starts its own Mosquitto with the project's config, connects every device, publishes
QoS 1 telemetry for `--seconds`, and counts what an independent `mosquitto_sub`
received. Prints connections, msg/s, resident memory and memory per device, and
writes bench/results/fleet.json.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import print_table, save  # noqa: E402
from devices.fleet import FleetRunner  # noqa: E402
from gateway.credentials import Credentials  # noqa: E402
from gateway.fleet import Fleet  # noqa: E402
from gateway.localstack import Broker  # noqa: E402
from gateway.settings import load_settings  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


class Counter(threading.Thread):
    """Counts lines from `mosquitto_sub`: what the broker delivered, independent of the fleet."""

    def __init__(self, process: subprocess.Popen) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.count = 0

    def run(self) -> None:
        for _ in self.process.stdout:
            self.count += 1


async def measure(fleet: Fleet, broker: Broker, seconds: float) -> dict:
    settings = load_settings({"CHOREO_MQTT_PORT": str(broker.device_port),
                              "CHOREO_DEVICES_SECRET": broker.credentials.fleet_secret})
    before = rss_mib()
    runner = FleetRunner(fleet, settings, status_stream=io.StringIO())
    stop = asyncio.Event()
    started = time.perf_counter()
    running = asyncio.create_task(runner.run(stop))
    while runner.snapshot()["connected"] < len(runner.members):
        if running.done():
            running.result()
        await asyncio.sleep(0.2)
    connect_seconds = time.perf_counter() - started
    connected_rss = rss_mib()
    first = runner.snapshot()["published"]
    window_start = time.perf_counter()
    peak = connected_rss
    while time.perf_counter() - window_start < seconds:
        await asyncio.sleep(1)
        peak = max(peak, rss_mib())
    published = runner.snapshot()["published"] - first
    window = time.perf_counter() - window_start
    stop.set()
    await running
    snapshot = runner.snapshot()
    return {
        "devices": len(runner.members),
        "connected": snapshot["devices"],
        "connect_seconds": connect_seconds,
        "published_per_second": published / window,
        "rss_mib_before": before,
        "rss_mib_peak": peak,
        "kib_per_device": (connected_rss - before) * 1024 / len(runner.members),
        "errors": snapshot["errors"],
        "reconnects": snapshot["reconnects"],
        "published_total": snapshot["published"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between each device's readings")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the measured window")
    args = parser.parse_args()
    raise_file_limit(args.devices * 2 + 100)  # the broker inherits it too
    fleet = Fleet.quick(args.devices, ["temperature"], args.interval)
    with tempfile.TemporaryDirectory() as state:
        credentials = Credentials.load_or_create(Path(state) / "credentials.json")
        broker = Broker(Path(state) / "mosquitto", credentials, [spec.id for spec in fleet.devices()])
        broker.start()
        subscriber = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", "admin", "-P", credentials.mqtt["admin"],
             "-t", "devices/+/telemetry", "-q", "1", "-F", "x"], stdout=subprocess.PIPE, text=True)
        counter = Counter(subscriber)
        counter.start()
        try:
            result = asyncio.run(measure(fleet, broker, args.seconds))
            deadline = time.monotonic() + 30
            while counter.count < result["published_total"] and time.monotonic() < deadline:
                time.sleep(0.2)
            result["broker_delivered_total"] = counter.count
        finally:
            subscriber.terminate()
            broker.stop()
    target = args.devices / args.interval
    print_table(f"fleet of {result['devices']:,} devices, one connection each, QoS 1, target {target:,.0f} msg/s", [
        ("connections", f"{result['connected']:,} (all up in {result['connect_seconds']:.1f} s)"),
        (f"telemetry published, steady window of {args.seconds:.0f} s", f"{result['published_per_second']:,.0f} msg/s"),
        ("published / delivered to an independent subscriber",
         f"{result['published_total']:,} / {result['broker_delivered_total']:,}"),
        ("resident memory, peak", f"{result['rss_mib_peak']:.0f} MiB"),
        ("memory per device", f"{result['kib_per_device']:.0f} KiB"),
        ("errors / reconnects", f"{result['errors']} / {result['reconnects']}"),
    ])
    save("fleet", result)


if __name__ == "__main__":
    main()
