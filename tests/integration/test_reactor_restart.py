"""Each reactor killed with SIGKILL mid-stream and restarted loses no fact, duplicates none, keeps its state.

The expected facts come from the same events run through the in-memory runner, step by step as the
run loop takes them: facts are derived from their causes, so the real run must produce exactly the
same ids and contents. Every event is delivered twice.

Timers (availability, door) run on event time during a backlog but on the wall clock whenever the
reactor is idle, and the stream's times are in the past: a timer may therefore fire earlier in the
real run than in memory. The streams are chosen so that every timer fires before anything of its key
could cancel it, so the same facts come out; only their order across keys, and with it the reactor's
own `sequence` counter, may differ, so for those two reactors `sequence` is left out of the comparison.
"""
from __future__ import annotations

import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from gateway.events import AlertClearedV1, AlertRaisedV1, Measurement, ReadingV1, new_event, utc_now
from gateway.plugins import build_reactor, reactor_names
from gateway.service import event_message
from gateway.settings import load_settings
from gateway.testing import ReactorHarness
from gateway.topics import event_topic
from tests.helpers import MqttObserver, wait_for

pytestmark = pytest.mark.integration

SUBJECTS = [f"k-{n}" for n in range(4)]
STEPS = 150
START = datetime(2026, 1, 1, 8, tzinfo=UTC)
TIMED = {"availability", "door"}


def readings(measure: Callable[[int, int], list[Measurement]]) -> list:
    """Per second of event time, for each subject, a reading of `measure(step, index)` (none if empty)."""
    events = []
    for step in range(STEPS):
        for index, subject in enumerate(SUBJECTS):
            if measurements := measure(step, index):
                events.append(new_event(ReadingV1(measurements=measurements), source=f"device/{subject}",
                                        subject=subject, time=START + timedelta(seconds=step), sequence=step + 1))
    return events


def temperature(value: float) -> list[Measurement]:
    return [Measurement(name="temperature", unit="Cel", value=value)]


def anomalous(step: int, index: int) -> list[Measurement]:
    """Varying noise, a spike every 25 s (outlier), a value held for 10 s every 40 s (stuck)."""
    s = step + index * 11
    return temperature(40.0 if s % 25 == 12 else 22.0 if s % 40 >= 30 else 21 + 0.3 * (s * 7 % 5))


def alerts() -> list:
    """Two sensors in the lab raise and clear temperature.high in turn: its fan is asked on, then off."""
    events = []
    for step in range(STEPS):
        raised = (step // 4) % 2 == 0
        data = (AlertRaisedV1 if raised else AlertClearedV1)(
            alert="temperature.high", metric="temperature", value=29, limit=28, unit="Cel", site="hq", room="lab",
            **({"above_seconds": 3} if raised else {}))
        events.append(new_event(data, source="reactor/threshold", subject=f"lab-temperature-{1 + step % 2}",
                                time=START + timedelta(seconds=step), sequence=step + 1))
    return events


# reactor -> (settings, the events that make it emit facts)
CASES = {
    "threshold": ({"CHOREO_REACTORS_THRESHOLD_HIGH": "28", "CHOREO_REACTORS_THRESHOLD_HYSTERESIS": "1",
                   "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "2"},
                  lambda: readings(lambda step, i: temperature(26 + 4 * ((step + i * 7) % 20 >= 10)))),
    # each subject every 4 s: offline, online, ...
    "availability": ({"CHOREO_REACTORS_AVAILABILITY_SILENCE_SECONDS": "1.5"},
                     lambda: readings(lambda step, i: temperature(20) if (step - i) % 4 == 0 else [])),
    "climate": ({}, alerts),
    # closed 10 s, open 10 s, ...: every opening outlasts the limit
    "door": ({"CHOREO_REACTORS_DOOR_LIMIT_SECONDS": "5"},
             lambda: readings(lambda step, i: [Measurement(name="door_open", unit="/",
                                                           value=float((step + i * 3) % 20 >= 10))])),
    "energy": ({"CHOREO_REACTORS_ENERGY_PERIOD_SECONDS": "10"},  # a counter that restarts every 60 s
               lambda: readings(lambda step, i: [Measurement(name="energy", unit="Wh",
                                                             value=(step + i * 13) % 60 * 2.0)])),
    "anomaly": ({"CHOREO_REACTORS_ANOMALY_METRICS": "temperature", "CHOREO_REACTORS_ANOMALY_WINDOW": "20",
                 "CHOREO_REACTORS_ANOMALY_MIN_SAMPLES": "5", "CHOREO_REACTORS_ANOMALY_STUCK_SECONDS": "5"},
                lambda: readings(anomalous)),
}
assert sorted(CASES) == reactor_names(), "every reactor has a case"


def twice(events) -> list[tuple[str, bytes]]:
    return [(event_topic(e.type, e.subject), e.to_json()) for e in events for _ in range(2)]


def comparable(fact: dict, name: str) -> dict:
    """A replayed fact is the same fact, emitted again: only its `emittedtime` differs (see above for `sequence`)."""
    left_out = {"emittedtime", "sequence"} if name in TIMED else {"emittedtime"}
    return {key: value for key, value in fact.items() if key not in left_out}


async def expected_facts(name: str, settings: dict, events) -> dict[str, dict]:
    runner = ReactorHarness(build_reactor(name, load_settings(settings)), start=utc_now()).runner
    facts = []
    for event in events:
        facts += runner.outcomes(event_message(event))
        facts += runner.fire_due_timers(runner.watermark)  # the loop's step after a delivery
    facts += runner.fire_due_timers(utc_now())  # idle at the end: the wall clock runs out what is left
    return {(fact.id, fact.type): comparable(json.loads(fact.to_json()), name) for fact in facts}


@pytest.mark.parametrize("name", CASES)
async def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(
        fresh_stack, services, tmp_path, fleet_file, name):
    stack = fresh_stack
    settings, stream = CASES[name]
    settings = {**settings, "CHOREO_FLEET_FILE": str(fleet_file)}
    events = stream()
    expected = await expected_facts(name, settings, events)
    env = {**stack.env(name), **settings, "CHOREO_REACTORS_STATE_DIR": str(tmp_path / "state")}
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "restart-observer") as observer:
        observer.subscribe(f"choreo/services/{name}")
        observer.subscribe("events/+/+")

        def start_reactor():
            process = services.start(name, ["reactor", name], env)
            count = len(observer.on(f"choreo/services/{name}"))
            wait_for(lambda: any(json.loads(m.payload)["status"] == "online"
                                 for m in observer.on(f"choreo/services/{name}")[count:]), 30, f"{name} online")
            return process

        def facts_seen():
            facts = [json.loads(m.payload) for m in observer.on("events/")]
            return [comparable(f, name) for f in facts if f["source"] == f"reactor/{name}"]

        reactor = start_reactor()
        half = len(events) // 2
        observer.publish_all(twice(events[:half]))  # every event is delivered twice
        wait_for(lambda: len(facts_seen()) >= 5, 30, "the first facts")
        reactor.send_signal(signal.SIGKILL)
        reactor.wait()
        observer.publish_all(twice(events[half:]))
        start_reactor()
        wait_for(lambda: {(f["id"], f["type"]) for f in facts_seen()} >= set(expected), 60,
                 f"all {len(expected)} expected facts (log: {services.log_dir / f'{name}.log'})")

    seen = {}
    for fact in facts_seen():
        # a fact in two versions (threshold's alert.raised.v1 and v2) is one id in two types
        assert seen.setdefault((fact["id"], fact["type"]), fact) == fact, "one id, two different facts"
    print(f"\n{name} SIGKILL: {len(events)} events delivered twice, facts expected {len(expected)}, "
          f"seen {len(seen)} ({len(facts_seen())} deliveries), lost {len(set(expected) - set(seen))}, "
          f"invented {len(set(seen) - set(expected))}")
    assert set(seen) == set(expected), "a fact was lost or invented"
    assert seen == expected
    assert len(expected) > 20  # the stream really did make the reactor emit many facts
