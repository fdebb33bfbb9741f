"""The fleet file's `profile` and `native` keys: validation, accounts and lookups by native name."""
from __future__ import annotations

import pytest

from gateway.errors import ConfigError
from gateway.fleet import Fleet, Registry


def fleet(*groups: dict) -> Fleet:
    return Fleet._validated({"sites": [{"id": "hq", "rooms": [{"id": "lab", "devices": list(groups)}]}]}, "fleet")


def test_each_device_has_its_native_name_and_the_account_it_connects_with():
    devices = fleet({"kind": "fan", "profile": "tasmota", "native": "sonoff-x"},
                    {"kind": "temperature", "profile": "zigbee2mqtt", "count": 2},
                    {"kind": "temperature"}).devices()
    assert [(d.id, d.profile, d.native, d.account) for d in devices] == [
        ("lab-fan-1", "tasmota", "sonoff-x", "sonoff-x"),
        ("lab-temperature-1", "zigbee2mqtt", "lab-temperature-1", "zigbee2mqtt"),
        ("lab-temperature-2", "zigbee2mqtt", "lab-temperature-2", "zigbee2mqtt"),
        ("lab-temperature-3", "native", "lab-temperature-3", "lab-temperature-3")]
    assert devices[0].params == {}  # profile and native are not simulation parameters


def test_accounts_are_distinct_and_the_registry_finds_a_device_by_its_native_name():
    registry_fleet = fleet({"kind": "fan", "profile": "shelly", "native": "shellyplus1-a8"},
                           {"kind": "fan", "profile": "zigbee2mqtt"}, {"kind": "heater", "profile": "zigbee2mqtt"})
    assert registry_fleet.accounts() == ["shellyplus1-a8", "zigbee2mqtt"]
    registry = Registry(registry_fleet)
    assert registry.by_native("shelly", "shellyplus1-a8").id == "lab-fan-1"
    assert registry.by_native("tasmota", "shellyplus1-a8") is None
    assert registry.describe("lab-fan-1") == {"site": "hq", "room": "lab", "kind": "fan"}
    assert registry.profiles() == {"shelly", "zigbee2mqtt"}


@pytest.mark.parametrize("groups,message", [
    ([{"kind": "fan", "profile": "tasmota", "native": "kitchen/fan"}], "native name 'kitchen/fan' must be 1-64"),
    ([{"kind": "fan", "profile": "tasmota", "native": "fan+1"}], "no '/', '+', '#' or spaces"),
    ([{"kind": "fan", "profile": "tasmota", "native": "x", "count": 2}], "names one device: count must be 1"),
    ([{"kind": "fan", "native": "x"}], "needs a profile"),
    ([{"kind": "fan", "profile": "homie", "native": "Fan-1"}], "a Homie device id has only lowercase"),
    ([{"kind": "fan", "profile": "zigbee"}], "profile: Input should be 'native', 'zigbee2mqtt'"),
    ([{"kind": "fan", "profile": "shelly", "native": "events"}], "a name reserved for a topic prefix"),
    ([{"kind": "fan", "profile": "tasmota", "native": "zigbee2mqtt"}], "or the Zigbee2MQTT bridge"),
    ([{"kind": "fan", "profile": "tasmota", "native": "a"}, {"kind": "fan", "profile": "shelly", "native": "a"}],
     "would connect as 'a', the account of 'lab-fan-1'"),
    ([{"kind": "fan", "profile": "tasmota", "native": "lab-fan-2"}, {"kind": "fan"}, {"kind": "fan"}],
     "would connect as 'lab-fan-2'"),
])
def test_a_bad_native_name_is_refused_naming_the_entry(groups, message):
    with pytest.raises(ConfigError) as refused:
        fleet(*groups)
    assert message in refused.value.message and refused.value.message.startswith("fleet: ")
