"""CPU per reading of ingest's, the threshold reactor's and the sink's own logic, in process, without MQTT.

Run with `.venv/bin/python bench/hot_paths.py [--readings 50000] [--rounds 3]`. Ingest turns native
telemetry (`{"seq", "ts", "temperature"}`) into `reading.v1` events and their JSON, as it does
before publishing; the threshold reactor's runner decodes each event's JSON, handles it and
checkpoints every 250 readings into SQLite, as it does between receiving and acknowledging; the
sink decodes each event and writes its line protocol, as it does before batching. The pipeline
bench (bench/pipeline.py) measures the same work with the broker, the sockets and the event loop
around it; this one shows what the services' own code costs, and what a change to it saves,
without that noise. Figures: microseconds of CPU per reading, the median of the rounds.
bench/instructions.py counts the same work in instructions, which a busy machine does not change.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import print_table, save  # noqa: E402
from gateway.events import Measurement, ReadingV1, decode_event, new_event, utc_now  # noqa: E402
from gateway.ingest.service import Ingest  # noqa: E402
from gateway.plugins import build_reactor  # noqa: E402
from gateway.reactor import ReactorRunner  # noqa: E402
from gateway.service import event_message  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from gateway.sink.schema import event_lines  # noqa: E402
from gateway.state import StateStore  # noqa: E402
from gateway.transport import ClientConfig, MemoryBroker, MemoryTransport, Message  # noqa: E402

DEVICES = 500
CHECKPOINT_EVERY = 250  # readings: about what the runner gathers in 50 ms at 5,000/s
LIMIT = 28.0


def temperature(n: int) -> float:
    """The `n`th reading's value; as in the pipeline bench, each device's every tenth reading is above
    the limit (staggered over the devices) and the next one back below it, so alerts are raised and cleared."""
    device, seq = n % DEVICES, n // DEVICES
    return 30.0 if (seq + device) % 10 == 0 else 20.0 + n % 7 / 10


def telemetry(count: int) -> list[Message]:
    start = datetime.now(UTC) - timedelta(seconds=60)
    messages = []
    for n in range(count):
        stamp = (start + timedelta(microseconds=n * 100)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        payload = json.dumps({"seq": n, "ts": stamp, "temperature": temperature(n)})
        messages.append(Message(f"devices/bench-{n % DEVICES}/telemetry", payload.encode()))
    return messages


def reading_events(count: int) -> list[Message]:
    start = datetime.now(UTC) - timedelta(seconds=60)
    messages = []
    for n in range(count):
        device = f"bench-{n % DEVICES}"
        data = ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=temperature(n))])
        event = new_event(data, source=f"device/{device}", subject=device,
                          time=start + timedelta(microseconds=n * 1000), sequence=n)
        messages.append(event_message(event))
    return messages


def cpu_us_per_item(work: Callable[[], None], count: int) -> float:
    started = time.process_time()
    work()
    return (time.process_time() - started) / count * 1e6


def ingest_round(messages: list[Message]) -> float:
    ingest = Ingest(None)

    def work() -> None:
        for message in messages:
            for event in ingest.facts(message):
                event_message(event)

    return cpu_us_per_item(work, len(messages))


async def threshold_round(messages: list[Message]) -> float:
    settings = load_settings({"CHOREO_REACTORS_THRESHOLD_HIGH": str(LIMIT),
                              "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "0",
                              "CHOREO_REACTORS_THRESHOLD_ALERT_VERSIONS": "v1"})
    with tempfile.TemporaryDirectory() as directory:
        async with MemoryTransport(MemoryBroker(), ClientConfig("threshold")) as transport:
            runner = ReactorRunner(build_reactor("threshold", settings), transport,
                                   StateStore(Path(directory) / "threshold.sqlite"))

            def work() -> None:
                for n, message in enumerate(messages, 1):
                    runner.outcomes(message)
                    if n % CHECKPOINT_EVERY == 0:
                        runner.checkpoint()

            return cpu_us_per_item(work, len(messages))


def sink_round(messages: list[Message]) -> float:
    def work() -> None:
        for message in messages:
            event_lines(decode_event(message.payload, topic=message.topic, now=utc_now()))

    return cpu_us_per_item(work, len(messages))


# Each service's work per reading: (label, measure, the messages it takes)
PATHS: dict[str, tuple[str, Callable[[list[Message]], float], Callable[[int], list[Message]]]] = {
    "ingest": ("ingest: telemetry -> reading.v1 JSON", ingest_round, telemetry),
    "threshold": ("threshold: reading.v1 JSON -> handled, checkpointed",
                  lambda messages: asyncio.run(threshold_round(messages)), reading_events),
    "sink": ("sink: reading.v1 JSON -> line protocol", sink_round, reading_events),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = {}
    for name, (_, measure, messages_for) in PATHS.items():
        messages = messages_for(args.readings)
        figures[name] = statistics.median(measure(messages) for _ in range(args.rounds))
    result = {"readings": args.readings, "rounds": args.rounds,
              **{f"{name}_us_per_reading": figure for name, figure in figures.items()}}
    print_table(f"CPU per reading in process, median of {args.rounds} rounds of {args.readings:,}",
                [(PATHS[name][0], f"{figure:.1f} us") for name, figure in figures.items()])
    print(f"\n(all figures in {save('hot_paths', result)})")


if __name__ == "__main__":
    main()
