"""Every device kind's payloads against the contract, through ingest's own decoder."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devices.fleet import SimulatedFleet
from gateway.events import ActuationRequestedV1, ActuatorChangedV1, ReadingV1, new_event
from gateway.fleet import DEVICE_KINDS, Fleet
from gateway.ingest.simjson import decode

NOW = datetime.now(UTC)
EXPECTED = {
    "temperature": {"temperature": "Cel", "humidity": "%RH", "battery": "%EL"},
    "co2": {"co2": "ppm"},
    "motion": {"motion": "/", "battery": "%EL"},
    "door": {"door_open": "/", "battery": "%EL"},
    "power": {"power": "W", "energy": "Wh"},
}


def members_by_kind(day_length: float = 100.0) -> dict:
    fleet = Fleet.quick(1, list(DEVICE_KINDS), interval=1.0).model_copy(update={"day_length": day_length})
    return {m.device.spec.kind: m for m in SimulatedFleet(fleet).members}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_sensor_payloads_are_valid_readings_with_senml_units(kind):
    simulation = SimulatedFleet(Fleet.quick(1, [kind], interval=1.0))
    [member] = simulation.members
    for sequence in range(1, 51):
        [payload] = simulation.telemetry(member)
        decoded = decode(payload, NOW)
        assert isinstance(decoded.data, ReadingV1) and decoded.sequence == sequence
        assert {m.name: m.unit for m in decoded.data.measurements} == EXPECTED[kind]


def test_temperature_follows_the_daily_cycle():
    simulation = SimulatedFleet(Fleet.quick(1, ["temperature"], interval=1.0).model_copy(update={"day_length": 100.0}))
    [member] = simulation.members
    values = [decode(simulation.telemetry(member)[0], NOW).data.value_of("temperature").value for _ in range(100)]
    assert max(values) - min(values) > 4  # default swing 3 Cel each way
    assert values.index(max(values)) < values.index(min(values))  # the day starts warming: warmest before coldest


def test_energy_only_grows_and_follows_power():
    simulation = SimulatedFleet(Fleet.quick(1, ["power"], interval=1.0))
    [member] = simulation.members
    energies = [decode(simulation.telemetry(member)[0], NOW).data.value_of("energy").value for _ in range(200)]
    assert energies == sorted(energies) and energies[-1] > 0


@pytest.mark.parametrize("kind, request_data, reported", [
    ("fan", {"state": "on"}, {"state": "on"}),
    ("heater", {"state": "on"}, {"state": "on"}),
    ("valve", {"position": 40.0}, {"position": 40.0}),
    ("valve", {"state": "on"}, {"position": 100.0}),
])
def test_actuators_apply_requests_and_name_them_in_their_report(kind, request_data, reported):
    member = members_by_kind()[kind]
    request = new_event(ActuationRequestedV1(reason="test", **request_data), source="reactor/climate",
                        subject=member.device.id)
    fields = member.device.apply(request)
    assert fields == {**reported, "request": request.id, "correlation": request.correlationid}
    decoded = decode(encode_report(member, fields), NOW)
    assert isinstance(decoded.data, ActuatorChangedV1)
    assert decoded.caused_by == (request.id, request.correlationid)
    assert member.device.apply(request) is None  # already in that state: nothing to report


def encode_report(member, fields) -> bytes:
    import json

    return json.dumps(member.device.telemetry(fields, NOW)).encode()
