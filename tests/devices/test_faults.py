"""Each fault mode does what the fleet file says, and ingest turns each into something sane."""
import json
import random
from datetime import UTC, datetime

import pytest

from devices.faults import MALFORMED, FaultInjector
from devices.fleet import SimulatedFleet
from gateway.errors import InvalidInput
from gateway.fleet import Faults, Fleet
from gateway.ingest.service import Ingest
from gateway.ingest.simjson import decode
from gateway.transport import Message

NOW = datetime.now(UTC)


def injector(**faults) -> FaultInjector:
    return FaultInjector(Faults(**faults), random.Random(1))


def test_duplicate_publishes_the_same_message_twice_and_ingest_makes_one_fact_of_it():
    now = datetime.now(UTC).isoformat()
    first, second = injector(duplicate=1.0).payloads({"seq": 1, "ts": now, "temperature": 1})
    assert first == second
    ingest = Ingest()
    [a], [b] = (ingest.facts(Message("devices/d-1/telemetry", p)) for p in (first, second))
    assert a.type == "reading.v1"
    assert a.id == b.id  # same topic and payload: the same event id, deduplicated downstream


def test_out_of_order_holds_one_message_back():
    faults = injector(out_of_order=1.0)
    assert faults.payloads({"seq": 1}) == []
    assert [json.loads(p)["seq"] for p in faults.payloads({"seq": 2})] == [2, 1]
    assert faults.counts["out_of_order"] == 1


@pytest.mark.parametrize("payload", MALFORMED)
def test_every_malformed_payload_is_rejected_by_ingest(payload):
    with pytest.raises(InvalidInput):
        decode(payload, NOW)


def test_malformed_replaces_the_payload():
    [payload] = injector(malformed=1.0).payloads({"seq": 1, "temperature": 1})
    assert payload in MALFORMED


def test_a_stuck_sensor_repeats_its_first_values():
    faults = injector(stuck=1.0)
    assert faults.sample({"temperature": 20.0}) == faults.sample({"temperature": 25.0}) == {"temperature": 20.0}


def test_clock_skew_moves_the_device_clock():
    skewed = Faults(clock_skew=1.0, clock_skew_seconds=3600)
    fleet = Fleet.quick(1, ["temperature"], 1.0).model_copy(update={"faults": skewed})
    simulation = SimulatedFleet(fleet)
    [member] = simulation.members
    [payload] = simulation.telemetry(member)
    skewed = datetime.fromisoformat(json.loads(payload)["ts"])
    assert 3590 < (skewed - datetime.now(UTC)).total_seconds() < 3610
    with pytest.raises(InvalidInput, match="in the future"):
        decode(payload, datetime.now(UTC))


def test_dropout_is_decided_per_message_and_counted():
    faults = injector(dropout=1.0)
    assert faults.drops_out() and faults.counts["dropout"] == 1
    assert not injector().drops_out()


def test_no_faults_by_default():
    faults = injector()
    assert faults.payloads({"seq": 1}) == [b'{"seq":1}']
    assert not faults.stuck and faults.skew_seconds == 0
