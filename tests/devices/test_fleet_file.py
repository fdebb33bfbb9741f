from pathlib import Path

import pytest

from devices.fleet import FleetRunner, SimulatedFleet
from gateway.errors import ConfigError
from gateway.fleet import Fleet, Registry
from gateway.settings import load_settings

FLEETS = Path(__file__).resolve().parents[2] / "devices" / "fleets"


def payloads(fleet: Fleet, rounds: int = 20) -> list[dict]:
    import json

    simulation = SimulatedFleet(fleet)
    out = []
    for _ in range(rounds):
        for member in simulation.members:
            if not member.device.is_actuator:
                for payload in simulation.telemetry(member):
                    document = json.loads(payload)
                    document.pop("ts")
                    out.append((member.device.id, member.due, document))
    return out


@pytest.mark.parametrize("name", ["demo.toml", "faulty.toml"])
def test_shipped_fleets_are_valid(name):
    fleet = Fleet.load(FLEETS / name)
    assert fleet.devices()


def test_the_demo_fleet_places_devices_in_sites_and_rooms():
    registry = Registry(Fleet.load(FLEETS / "demo.toml"))
    assert registry.describe("lab-temperature-2") == {"site": "hq", "room": "lab", "kind": "temperature"}
    assert registry.actuators("hq", "lab", ("fan",)) == ["lab-fan-1"]
    assert registry.describe("nowhere-1") == {}


def test_the_same_seed_reproduces_the_same_run_and_another_seed_does_not():
    fleet = Fleet.load(FLEETS / "demo.toml")
    assert payloads(fleet) == payloads(fleet)
    assert payloads(fleet) != payloads(fleet.model_copy(update={"seed": fleet.seed + 1}))


@pytest.mark.parametrize("text, message", [
    ('[[sites]]\nid = "a"\n[[sites.rooms]]\nid = "r"\ndevices = [{ kind = "toaster" }]',
     "unknown device kind 'toaster'"),
    ('[[sites]]\nid = "a"\n[[sites.rooms]]\nid = "r"\ndevices = [{ kind = "fan", count = 0 }]',
     "count: Input should be greater than or equal to 1"),
    ('[[sites]]\nid = "a b"\n[[sites.rooms]]\nid = "r"', "sites.0.id: String should match pattern"),
    ('[[sites]]\nid = "a"\n[[sites.rooms]]\nid = "r"\n[[sites]]\nid = "b"\n[[sites.rooms]]\nid = "r"\n'
     'devices = [{ kind = "fan" }]\n', ""),
    ('seed = 1\n[faults]\nduplicate = 2\n[[sites]]\nid = "a"\n[[sites.rooms]]\nid = "r"',
     "faults.duplicate: Input should be less than or equal to 1"),
    ("sites = [", "not valid TOML"),
])
def test_bad_fleet_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    if not message:  # the same room id in two sites, but only one of them has devices: valid
        Fleet.load(path)
        return
    with pytest.raises(ConfigError) as raised:
        Fleet.load(path)
    assert message in raised.value.message and str(path) in raised.value.message


def test_duplicate_device_ids_are_refused(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[[sites]]\nid = "a"\n[[sites.rooms]]\nid = "r"\ndevices = [{ kind = "fan" }]\n'
                    '[[sites]]\nid = "b"\n[[sites.rooms]]\nid = "r"\ndevices = [{ kind = "fan" }]\n')
    with pytest.raises(ConfigError, match="device id 'r-fan-1' occurs twice"):
        Fleet.load(path)


def test_bad_kind_parameters_are_refused_before_connecting(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[[sites]]\nid = "a"\n[[sites.rooms]]\nid = "r"\n'
                    'devices = [{ kind = "temperature", swing = "big" }]')
    settings = load_settings({"CHOREO_DEVICES_SECRET": "s"})
    with pytest.raises(ConfigError, match=r"device r-temperature-1 \(temperature\): parameter swing"):
        FleetRunner(Fleet.load(path), settings)


def test_missing_fleet_file():
    with pytest.raises(ConfigError, match="does not exist"):
        Fleet.load("/nonexistent/fleet.toml")
