"""What each device convention's decoding costs per message, next to the simulator's own JSON.

Run with `.venv/bin/python bench/profiles.py [--messages 5000] [--rounds 5]`. In one process, no
broker: for each convention, one representative reading from a fleet device (the temperature and
humidity messages of its documentation; Homie's one property per message) goes through the
profile's decoding alone, and through ingest as a whole (decoding, the registry's placement and the
`reading.v1` fact built). The conventions run in turn within each round, so a noisy neighbour on
this shared machine touches them alike; the figure is each one's best round, in microseconds per
message, with its ratio to the native JSON's of the same run. Results also go to
bench/results/profiles.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import save  # noqa: E402
from gateway.fleet import Fleet, Registry  # noqa: E402
from gateway.ingest.service import Ingest  # noqa: E402
from gateway.profiles import PROFILES, Memory  # noqa: E402
from gateway.transport import Message  # noqa: E402

FLEET = Fleet.model_validate({"sites": [{"id": "hq", "rooms": [{"id": "lab", "devices": [
    {"kind": "temperature"},
    {"kind": "temperature", "profile": "zigbee2mqtt", "native": "kitchen_th"},
    {"kind": "temperature", "profile": "tasmota", "native": "sonoff-th"},
    {"kind": "temperature", "profile": "shelly", "native": "shellyht-g3"},
    {"kind": "temperature", "profile": "homie", "native": "th-sensor"},
]}]}]})
HOMIE_DESCRIPTION = json.dumps({"homie": "5.0", "version": 1, "name": "th", "nodes": {"climate": {"properties": {
    "temperature": {"datatype": "float", "unit": "°C"}, "humidity": {"datatype": "float", "unit": "%"}}}}}).encode()
SHELLY: dict[str, Any] = {"src": "shellyht-g3", "dst": "shellyht-g3/events", "method": "NotifyStatus",
          "params": {"ts": 0.0, "temperature:0": {"id": 0, "tC": 21.5, "tF": 70.7},
                     "humidity:0": {"id": 0, "rh": 45.2}}}


def messages(now: datetime) -> dict[str, Message]:
    shelly = {**SHELLY, "params": {**SHELLY["params"], "ts": round(now.timestamp(), 2)}}
    return {
        "native": Message("devices/lab-temperature-1/telemetry", b'{"seq": 1, "temperature": 21.5, "humidity": 45.2}'),
        "zigbee2mqtt": Message("zigbee2mqtt/kitchen_th", b'{"temperature":21.5,"humidity":45.2,"linkquality":120}'),
        "tasmota": Message("tele/sonoff-th/SENSOR", b'{"Time":"2026-11-26T10:00:00","AM2301":{"Temperature":21.5,'
                           b'"Humidity":45.2,"DewPoint":9.1},"TempUnit":"C"}'),
        "shelly": Message("shellyht-g3/events/rpc", json.dumps(shelly).encode()),
        "homie": Message("homie/5/th-sensor/climate/temperature", b"21.5"),
    }


def per_message(run: Callable[[], object], count: int) -> float:
    """Microseconds per call of `run`, over `count` calls."""
    started = time.perf_counter()
    for _ in range(count):
        run()
    return (time.perf_counter() - started) / count * 1e6


def measure(count: int, rounds: int) -> dict[str, dict[str, float]]:
    now = datetime.now(UTC)
    samples = messages(now)
    ingest = Ingest(Registry(FLEET))
    ingest.facts(Message("homie/5/th-sensor/$description", HOMIE_DESCRIPTION, retain=True))
    memories = {name: Memory() for name in PROFILES}
    PROFILES["homie"].decode("homie/5/th-sensor/$description", HOMIE_DESCRIPTION, now, memories["homie"])
    best: dict[str, dict[str, float]] = {name: {"decode_us": float("inf"), "ingest_us": float("inf")}
                                         for name in samples}
    for _ in range(rounds):
        for name, message in samples.items():
            decode = per_message(partial(PROFILES[name].decode, message.topic, message.payload, now, memories[name]),
                                 count)
            whole = per_message(partial(ingest.facts, message), count)
            best[name]["decode_us"] = min(best[name]["decode_us"], decode)
            best[name]["ingest_us"] = min(best[name]["ingest_us"], whole)
    assert ingest.counts["rejected"] == 0, "a sample was rejected: the bench would measure the wrong path"
    return best


def report(best: dict[str, dict[str, float]]) -> None:
    native = best["native"]
    print("\n| profile | decoding, us/message | ratio | ingest as a whole, us/message | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, figures in best.items():
        print(f"| {name} | {figures['decode_us']:.1f} | {figures['decode_us'] / native['decode_us']:.2f} "
              f"| {figures['ingest_us']:.1f} | {figures['ingest_us'] / native['ingest_us']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5_000, help="messages per convention per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    best = measure(args.messages, args.rounds)
    report(best)
    path = save("profiles", {"messages": args.messages, "rounds": args.rounds, "best": best})
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
