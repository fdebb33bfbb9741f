"""A reactor killed with SIGKILL mid-stream and restarted loses no fact, duplicates none, keeps its state.

The expected facts come from the same events run through the in-memory harness: facts are
derived from their causes, so the real run must produce exactly the same ids.
"""
from __future__ import annotations

import json
import signal
from datetime import datetime, timedelta, timezone

import pytest

from gateway.events import Measurement, ReadingV1, new_event
from gateway.settings import load_settings
from gateway.testing import ReactorHarness
from gateway.topics import event_topic
from reactors import threshold
from tests.helpers import MqttObserver, wait_for

pytestmark = pytest.mark.integration

SETTINGS = {"CHOREO_THRESHOLD_HIGH": "28", "CHOREO_THRESHOLD_HYSTERESIS": "1", "CHOREO_THRESHOLD_MIN_DURATION": "2"}
SUBJECTS = [f"k-{n}" for n in range(4)]
START = datetime(2026, 1, 1, 8, tzinfo=timezone.utc)


def stream() -> list:
    """Per subject, a temperature that crosses 28 Cel again and again: many raises and clears."""
    events = []
    for step in range(150):
        for index, subject in enumerate(SUBJECTS):
            value = 26 + 4 * ((step + index * 7) % 20 >= 10)  # 10 readings at 26, then 10 at 30
            data = ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=value)])
            events.append(new_event(data, source=f"device/{subject}", subject=subject,
                                    time=START + timedelta(seconds=step), sequence=step + 1))
    return events


def twice(events) -> list[tuple[str, bytes]]:
    return [(event_topic(e.type, e.subject), e.to_json()) for e in events for _ in range(2)]


async def expected_facts(events) -> dict[str, dict]:
    harness = ReactorHarness(threshold.build(load_settings(SETTINGS)))
    facts = [fact for event in events for fact in await harness.send(event)]
    return {fact.id: without_emitted_time(json.loads(fact.to_json())) for fact in facts}


def without_emitted_time(fact: dict) -> dict:
    """A replayed fact is the same fact, emitted again: only its `emittedtime` differs."""
    return {key: value for key, value in fact.items() if key != "emittedtime"}


async def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(fresh_stack, services, tmp_path):
    stack = fresh_stack
    events = stream()
    expected = await expected_facts(events)
    env = {**stack.env("threshold"), **SETTINGS, "CHOREO_REACTORS_STATE_DIR": str(tmp_path / "state")}
    admin = stack.credentials.mqtt["admin"]
    with MqttObserver(stack.broker.port, "admin", admin, "restart-observer") as observer:
        observer.subscribe("choreo/services/threshold")
        observer.subscribe("events/+/+")

        def start_reactor():
            process = services.start("threshold", ["reactor", "threshold"], env)
            count = len(observer.on("choreo/services/threshold"))
            wait_for(lambda: any(json.loads(m.payload)["status"] == "online"
                                 for m in observer.on("choreo/services/threshold")[count:]), 30, "threshold online")
            return process

        def facts_seen():
            return [without_emitted_time(json.loads(m.payload)) for m in observer.on("events/alert.")]

        reactor = start_reactor()
        half = len(events) // 2
        observer.publish_all(twice(events[:half]))  # every event is delivered twice
        wait_for(lambda: len(facts_seen()) >= 5, 30, "the first facts")
        reactor.send_signal(signal.SIGKILL)
        reactor.wait()
        observer.publish_all(twice(events[half:]))
        start_reactor()
        wait_for(lambda: {f["id"] for f in facts_seen()} >= set(expected), 60,
                 f"all {len(expected)} expected facts (log: {services.log_dir / 'threshold.log'})")

    seen = {}
    for fact in facts_seen():
        assert seen.setdefault(fact["id"], fact) == fact, "one id, two different facts"
    assert set(seen) == set(expected), "a fact was lost or invented"
    assert seen == expected
    assert len(expected) > 40  # the stream really did raise and clear many alerts
