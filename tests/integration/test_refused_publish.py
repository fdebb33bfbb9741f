"""A service whose declarations and the broker's ACL disagree: on the real broker, refused facts are
never counted as delivered, the service stops naming the topic and the reason, and nothing it
acknowledged is lost; once the ACL is fixed and the service restarted, the fact arrives.

An independent paho client watches the broker; the ACL is the one generated from the declarations,
with one line taken out of the service's block.
"""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.events import Measurement, ReadingV1, new_event, utc_now
from gateway.localstack import LocalStack
from gateway.service import EXIT_FAILED
from tests.conftest import TEST_DEVICES
from tests.helpers import MqttObserver, wait_for

pytestmark = pytest.mark.integration

SUBJECT = "lab-temperature-1"
START = utc_now() - timedelta(minutes=1)
THRESHOLD = {"CHOREO_REACTORS_THRESHOLD_HIGH": "28", "CHOREO_REACTORS_THRESHOLD_HYSTERESIS": "1",
             "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "2"}


def acl_without(stack: LocalStack, user: str, line: str, path: Path) -> Path:
    """The stack's generated ACL with `line` taken out of `user`'s block."""
    head, block = stack.broker.acl.read_text().split(f"\nuser {user}\n", 1)
    assert line in block.split("\n\n", 1)[0]
    path.write_text(f"{head}\nuser {user}\n{block.replace(line, '', 1)}")
    return path


def reading(value: float, seconds: float) -> tuple[str, bytes]:
    data = ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=value)])
    event = new_event(data, source=f"device/{SUBJECT}", subject=SUBJECT, time=START + timedelta(seconds=seconds))
    return f"events/reading.v1/{SUBJECT}", event.to_json()


def facts(observer: MqttObserver, event_type: str) -> list[dict]:
    return [json.loads(m.payload) for m in observer.on(f"events/{event_type}/")]


def observing(stack: LocalStack) -> MqttObserver:
    return MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"])


def restart_broker_with_the_generated_acl(stack: LocalStack) -> None:
    """The ACL fixed; the broker keeps its port and state, so sessions and unacknowledged messages survive."""
    stack.broker.stop()
    stack.broker.acl = stack.state_dir / "mosquitto" / "acl"
    stack.broker.start()


def start(services, name: str, command: list[str], env: dict[str, str]) -> None:
    """Start a service and wait until it has subscribed."""
    logged = len(services.log(name)) if services.processes.get(name) else 0
    services.start(name, command, env)
    wait_for(lambda: f"{name} consuming" in services.log(name)[logged:], 30, f"{name} to subscribe")


def stopped(services, name: str) -> int:
    process = services.processes[name]
    wait_for(lambda: process.poll() is not None, 30, f"{name} to stop ({services.log_dir / f'{name}.log'})")
    return process.returncode


def test_a_reactor_whose_fact_is_refused_stops_keeps_it_and_publishes_it_once_allowed(tmp_path, services):
    stack = LocalStack(tmp_path / "stack", TEST_DEVICES)
    stack.broker.acl = acl_without(stack, "threshold", "topic write events/alert.raised.v1/+\n", tmp_path / "acl")
    env = {**THRESHOLD, "CHOREO_REACTORS_STATE_DIR": str(tmp_path / "state")}
    with stack:
        with observing(stack) as observer:
            observer.subscribe("events/#")
            start(services, "threshold", ["reactor", "threshold"], {**stack.env("threshold"), **env})
            observer.publish_all([reading(30, 0), reading(30, 3)])  # beyond 28 for 3 s: an alert is due

            assert stopped(services, "threshold") == EXIT_FAILED
            log = services.log("threshold")
            assert f"refused the publish to events/alert.raised.v1/{SUBJECT}: not authorized (0x87)" in log
            assert "keeps fact" in log and "threshold stopped" in log
            assert facts(observer, "alert.raised.v1") == []

        restart_broker_with_the_generated_acl(stack)
        with observing(stack) as observer:
            observer.subscribe("events/#")
            start(services, "threshold", ["reactor", "threshold"], {**stack.env("threshold"), **env})
            wait_for(lambda: facts(observer, "alert.raised.v1"), 30, "the alert kept in the outbox")
            observer.publish_all([reading(20, 4)])  # back below: cleared, and so every earlier fact is out
            wait_for(lambda: facts(observer, "alert.cleared.v1"), 30, "the alert to clear")

    [alert] = facts(observer, "alert.raised.v1")  # published once, though its cause came again
    [cleared] = facts(observer, "alert.cleared.v1")
    assert alert["subject"] == SUBJECT and alert["data"]["value"] == 30
    assert cleared["correlationid"] != alert["correlationid"]  # each caused by its own reading


def test_ingest_whose_fact_is_refused_stops_without_acknowledging_the_device_message(tmp_path, services):
    stack = LocalStack(tmp_path / "stack", TEST_DEVICES)
    stack.broker.acl = acl_without(stack, "ingest", "topic write events/reading.v1/+\n", tmp_path / "acl")
    telemetry = json.dumps({"seq": 1, "ts": utc_now().isoformat(), "temperature": 21.5}).encode()
    with stack:
        with observing(stack) as observer:
            observer.subscribe("events/#")
            start(services, "ingest", ["ingest"], stack.env("ingest"))
            observer.publish(f"devices/{SUBJECT}/telemetry", telemetry)

            assert stopped(services, "ingest") == EXIT_FAILED
            refusal = f"refused the publish to events/reading.v1/{SUBJECT}: not authorized (0x87)"
            assert refusal in services.log("ingest")
            assert facts(observer, "reading.v1") == []

        restart_broker_with_the_generated_acl(stack)
        with observing(stack) as observer:
            observer.subscribe("events/#")
            start(services, "ingest", ["ingest"], stack.env("ingest"))
            wait_for(lambda: facts(observer, "reading.v1"), 30, "the reading the broker delivered again")

    [fact] = facts(observer, "reading.v1")
    assert fact["data"]["measurements"][0]["value"] == 21.5
