"""InfluxDB's CPU per reading for each way of storing it, alternating, on one InfluxDB 1.x.

Run with `.venv/bin/python bench/storage_layout.py [--readings 100000] [--rounds 3]`. Starts its own
InfluxDB; for each round and layout, writes the same single-metric readings (500 devices) into a
database of its own in batches of 5,000 points, as the sink does, and reads influxd's CPU from /proc
from the first write to 2 s after the last (what the write leaves to the background counts too).
Layouts: `old` (before 0.3: an `events` point with the data as JSON plus a `readings` point),
`current` (gateway/sink/schema.py: one point, id, sequence, emitted time and the measurement),
`id + value` (one point with only the id and the measurement) and `node-red` (bench/nodered's flow:
one point with the value only). Prints the median of the rounds and the ratios to `node-red`.
"""
from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procstat import cpu_seconds  # noqa: E402
from bench.report import print_table, save  # noqa: E402
from gateway.events import Event, Measurement, ReadingV1, new_event  # noqa: E402
from gateway.localstack import LocalStack  # noqa: E402
from gateway.sink.lineprotocol import encode_point  # noqa: E402
from gateway.sink.schema import event_lines, nanoseconds, timestamp_ns  # noqa: E402

BATCH = 5000
DEVICES = 500


def old(event: Event) -> list[str]:
    ts, data = timestamp_ns(event), event.data
    return [encode_point("events", {"type": event.type, "subject": event.subject, "source": event.source},
                         {"id": event.id, "correlationid": event.correlationid, "sequence": event.sequence,
                          "emittedtime": nanoseconds(event.emittedtime), "data": data.model_dump_json()}, ts),
            encode_point("readings", {"device": event.subject, "metric": "temperature", "unit": "Cel"},
                         {"value": data.measurements[0].value, "event_id": event.id}, ts)]


def id_and_value(event: Event) -> list[str]:
    return [encode_point("readings", {"device": event.subject, "type": event.type, "source": event.source,
                                      "unit.temperature": "Cel"},
                         {"id": event.id, "temperature": event.data.measurements[0].value}, timestamp_ns(event))]


def node_red(event: Event) -> list[str]:
    return [encode_point("readings", {"device": event.subject, "metric": "temperature", "unit": "Cel"},
                         {"value": event.data.measurements[0].value}, timestamp_ns(event))]


LAYOUTS: dict[str, Callable[[Event], list[str]]] = {
    "old": old, "current": event_lines, "id + value": id_and_value, "node-red": node_red}


def readings(count: int, first_sequence: int) -> list[Event]:
    return [new_event(ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=20.0 + n % 10)]),
                      source="gateway/ingest", subject=f"bench-{n % DEVICES}", sequence=first_sequence + n)
            for n in range(count)]


class Influx:
    def __init__(self, stack: LocalStack) -> None:
        self.url, self.pid = stack.influxdb.url, stack.influxdb.process.pid
        credentials = f"admin:{stack.credentials.influx_admin_password}".encode()
        self.authorization = "Basic " + base64.b64encode(credentials).decode()

    def post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(self.url + path, data=body)
        request.add_header("Authorization", self.authorization)
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()

    def cpu_per_100k(self, database: str, lines: list[str], count: int) -> float:
        self.post("/query", f"q=CREATE DATABASE {database}".encode())
        before = cpu_seconds(self.pid)
        for start in range(0, len(lines), BATCH):
            self.post(f"/write?db={database}", "\n".join(lines[start:start + BATCH]).encode())
        time.sleep(2)  # a bench may wait: the cache snapshot after the writes is part of their cost
        return (cpu_seconds(self.pid) - before) / count * 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    with tempfile.TemporaryDirectory() as state, LocalStack(Path(state)) as stack:
        influx = Influx(stack)
        for round_ in range(args.rounds):
            events = readings(args.readings, round_ * args.readings)
            for index, (name, layout) in enumerate(LAYOUTS.items()):
                lines = [line for event in events for line in layout(event)]
                results[name].append(influx.cpu_per_100k(f"layout{round_}x{index}", lines, args.readings))
    medians = {name: sorted(values)[len(values) // 2] for name, values in results.items()}
    print_table(f"InfluxDB CPU s per 100,000 single-metric readings (median of {args.rounds} rounds)",
                [(name, f"{cpu:.2f} ({cpu / medians['node-red']:.2f} x node-red)") for name, cpu in medians.items()])
    print(f"\n(all figures in {save('storage_layout', {'rounds': results, 'medians': medians})})")


if __name__ == "__main__":
    main()
