"""Each simulated convention's topics and payloads, checked against its documentation's examples.

Sources: https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html,
https://tasmota.github.io/docs/MQTT/, https://shelly-api-docs.shelly.cloud/gen2/General/RPCProtocol
and .../Notifications, https://homieiot.github.io/specification/spec-core-v5_0_0/.
"""
from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from devices.kinds import KINDS
from devices.profiles import SPEAKERS, Change, speaker_for
from devices.profiles.speaker import Speaker
from gateway.errors import ConfigError, InvalidInput
from gateway.fleet import DeviceSpec, Faults
from gateway.transport import Message

NOW = datetime(2026, 11, 26, 16, 0, 5, tzinfo=UTC)


def speaker(profile: str, kind: str, native: str) -> Speaker:
    spec = DeviceSpec(id=f"lab-{kind}-1", kind=kind, site="hq", room="lab", interval=1.0, faults=Faults(),
                      profile=profile, native=native)
    device = KINDS[kind](spec, random.Random(1), 60.0)
    found = speaker_for(device)
    assert found is not None
    return found


def by_topic(messages: list[Message]) -> dict[str, Message]:
    return {m.topic: m for m in messages}


def obey(talker: Speaker, topic: str, payload: bytes) -> list[Message]:
    """The command path of the runner (devices/commands.py) without a broker."""
    command = Message(topic, payload)
    change = talker.command(command)
    before = talker.device.state()
    talker.device.change(change)
    return talker.answer(command, before, talker.device.state(), NOW)


def test_native_devices_have_no_speaker():
    spec = DeviceSpec(id="lab-fan-1", kind="fan", site="hq", room="lab", interval=1.0, faults=Faults())
    assert speaker_for(KINDS["fan"](spec, random.Random(1), 60.0)) is None
    assert set(SPEAKERS) == {"zigbee2mqtt", "tasmota", "shelly", "homie"}


def test_a_profile_refuses_a_kind_it_does_not_simulate():
    with pytest.raises(ConfigError, match="the shelly simulator has no 'valve'"):
        speaker("shelly", "valve", "shelly-valve")


# Zigbee2MQTT


def test_zigbee2mqtt_sensor_publishes_flat_json_on_its_friendly_name():
    talker = speaker("zigbee2mqtt", "temperature", "lab_climate")
    [message] = talker.readings({"temperature": 27.34, "humidity": 44.72}, NOW)
    assert message.topic == "zigbee2mqtt/lab_climate" and not message.retain
    body = json.loads(message.payload)
    assert body["temperature"] == 27.34 and body["humidity"] == 44.72  # the docs' WSDCGQ01LM example
    assert 0 <= body["battery"] <= 100 and 0 <= body["linkquality"] <= 255


def test_zigbee2mqtt_devices_share_the_bridge_client_and_its_availability_topics():
    sensor, plug = speaker("zigbee2mqtt", "motion", "hall_pir"), speaker("zigbee2mqtt", "fan", "lab_fan")
    assert sensor.device.spec.account == plug.device.spec.account == "zigbee2mqtt"
    assert sensor.will() == Message("zigbee2mqtt/bridge/state", b'{"state":"offline"}', retain=True)
    assert sensor.birth() == Message("zigbee2mqtt/bridge/state", b'{"state":"online"}', retain=True)
    assert sensor.announcements() == [Message("zigbee2mqtt/hall_pir/availability", b'{"state":"online"}', retain=True)]
    assert json.loads(sensor.readings({"motion": 1}, NOW)[0].payload)["occupancy"] is True


def test_zigbee2mqtt_bridge_devices_lists_every_device_with_the_units_of_its_exposes():
    talkers = [speaker("zigbee2mqtt", "temperature", "lab_climate"), speaker("zigbee2mqtt", "fan", "lab_fan")]
    [message] = type(talkers[0]).client_announcements(talkers)
    assert message.topic == "zigbee2mqtt/bridge/devices" and message.retain
    climate, fan = json.loads(message.payload)
    assert climate["friendly_name"] == "lab_climate" and climate["ieee_address"].startswith("0x")
    units = {e["property"]: e.get("unit") for e in climate["definition"]["exposes"]}
    assert units["temperature"] == "°C" and units["humidity"] == "%"
    [switch] = fan["definition"]["exposes"][0]["features"]
    assert switch == {**switch, "property": "state", "access": 7, "value_on": "ON", "value_off": "OFF"}


def test_zigbee2mqtt_plug_obeys_set_and_reports_its_state():
    plug = speaker("zigbee2mqtt", "fan", "lab_fan")
    assert plug.command_filters() == ["zigbee2mqtt/lab_fan/set"]
    [report] = obey(plug, "zigbee2mqtt/lab_fan/set", b'{"state": "ON"}')
    assert report.topic == "zigbee2mqtt/lab_fan" and json.loads(report.payload)["state"] == "ON"
    [report] = obey(plug, "zigbee2mqtt/lab_fan/set", b'{"state": "TOGGLE"}')
    assert json.loads(report.payload)["state"] == "OFF"
    for bad in (b"ON", b'{"state": "dim"}', b"\xff"):
        with pytest.raises(InvalidInput, match="zigbee2mqtt set for lab_fan"):
            plug.command(Message("zigbee2mqtt/lab_fan/set", bad))


# Tasmota


def test_tasmota_sensor_nests_readings_per_sensor_with_tempunit():
    talker = speaker("tasmota", "temperature", "th-lab")
    [message] = talker.readings({"temperature": 23.04, "humidity": 37.0}, NOW)
    assert message.topic == "tele/th-lab/SENSOR"
    body = json.loads(message.payload)
    assert body["Time"] == "2026-11-26T16:00:05" and body["TempUnit"] == "C"
    assert body["AM2301"]["Temperature"] == 23.0 and body["AM2301"]["Humidity"] == 37.0
    assert 7.0 < body["AM2301"]["DewPoint"] < 8.5  # the docs' DHT11 example: 23.0 C, 37 % -> 7.5


def test_tasmota_energy_monitor_reports_power_in_watts_and_totals_in_kwh():
    [message] = speaker("tasmota", "power", "plug-plant").readings({"power": 920.4, "energy": 1500.0}, NOW)
    energy = json.loads(message.payload)["ENERGY"]
    assert energy["Power"] == 920 and energy["Total"] == 1.5 and energy["Voltage"] == 230


def test_tasmota_relay_lwt_state_and_power_command():
    relay = speaker("tasmota", "fan", "sonoff-lab")
    assert relay.will() == Message("tele/sonoff-lab/LWT", b"Offline", retain=True)
    assert relay.birth() == Message("tele/sonoff-lab/LWT", b"Online", retain=True)
    [state] = relay.state_report({"state": "off"}, NOW)
    assert state.topic == "tele/sonoff-lab/STATE" and json.loads(state.payload)["POWER"] == "OFF"
    assert relay.command_filters() == ["cmnd/sonoff-lab/POWER"]
    messages = by_topic(obey(relay, "cmnd/sonoff-lab/POWER", b"ON"))
    assert json.loads(messages["stat/sonoff-lab/RESULT"].payload) == {"POWER": "ON"}
    assert messages["stat/sonoff-lab/POWER"].payload == b"ON"
    assert by_topic(obey(relay, "cmnd/sonoff-lab/POWER", b"2"))["stat/sonoff-lab/POWER"].payload == b"OFF"
    assert by_topic(obey(relay, "cmnd/sonoff-lab/POWER", b""))["stat/sonoff-lab/POWER"].payload == b"OFF"
    with pytest.raises(InvalidInput, match="POWER takes ON, OFF or TOGGLE"):
        relay.command(Message("cmnd/sonoff-lab/POWER", b"BLINK"))


# Shelly


def test_shelly_ht_notifies_temperature_humidity_and_battery_components():
    talker = speaker("shelly", "temperature", "shellyplusht-c4d8d5")
    [message] = talker.readings({"temperature": 21.54, "humidity": 45.2}, NOW)
    assert message.topic == "shellyplusht-c4d8d5/events/rpc"
    frame = json.loads(message.payload)
    assert frame["method"] == "NotifyStatus" and frame["src"] == "shellyplusht-c4d8d5"
    assert frame["dst"] == "shellyplusht-c4d8d5/events" and frame["params"]["ts"] == NOW.timestamp()
    assert frame["params"]["temperature:0"] == {"id": 0, "tC": 21.5, "tF": 70.7}
    assert frame["params"]["humidity:0"] == {"id": 0, "rh": 45.2}
    assert 0 <= frame["params"]["devicepower:0"]["battery"]["percent"] <= 100


def test_shelly_switch_answers_switch_set_and_notifies_the_change():
    relay = speaker("shelly", "fan", "shellyplus1pm-lab")
    assert relay.will() == Message("shellyplus1pm-lab/online", b"false", retain=True)
    assert relay.birth() == Message("shellyplus1pm-lab/online", b"true", retain=True)
    assert relay.command_filters() == ["shellyplus1pm-lab/rpc"]
    request = b'{"id": 7, "src": "choreo-bridge", "method": "Switch.Set", "params": {"id": 0, "on": true}}'
    response, notification = obey(relay, "shellyplus1pm-lab/rpc", request)
    assert response.topic == "choreo-bridge/rpc"
    assert json.loads(response.payload) == {"id": 7, "src": "shellyplus1pm-lab", "dst": "choreo-bridge",
                                            "result": {"was_on": False}}
    switch = json.loads(notification.payload)["params"]["switch:0"]
    assert switch["output"] is True and switch["apower"] > 0
    [unchanged] = obey(relay, "shellyplus1pm-lab/rpc", request)  # a switch notifies only changes
    assert json.loads(unchanged.payload)["result"] == {"was_on": True}


def test_shelly_switch_notifies_its_metering_without_its_output_between_commands():
    relay = speaker("shelly", "heater", "shellyplus1pm-office")
    [off] = relay.readings({"state": "off"}, NOW)
    switch = json.loads(off.payload)["params"]["switch:0"]
    assert "output" not in switch and switch["apower"] == 0.0 and 228 <= switch["voltage"] <= 232
    [on] = relay.readings({"state": "on"}, NOW)
    assert json.loads(on.payload)["params"]["switch:0"]["apower"] > 1000


def test_shelly_refuses_a_bad_request_with_an_error_frame_to_its_caller():
    relay = speaker("shelly", "fan", "shellyplus1pm-lab")
    command = Message("shellyplus1pm-lab/rpc", b'{"id": 2, "src": "me", "method": "Switch.Set", "params": {"on": 1}}')
    with pytest.raises(InvalidInput) as caught:
        relay.command(command)
    [error] = relay.refusal(command, caught.value.message)
    assert error.topic == "me/rpc" and json.loads(error.payload)["error"]["code"] == -103
    with pytest.raises(InvalidInput, match="needs a plain `src`"):
        relay.command(Message("shellyplus1pm-lab/rpc", b'{"id": 3, "src": "a/#", "method": "Switch.Set"}'))
    assert relay.refusal(Message("x", b'{"src": "a/#"}'), "bad") == []


# Homie 5


def test_homie_device_describes_itself_and_publishes_one_retained_topic_per_property():
    talker = speaker("homie", "temperature", "store-climate")
    assert talker.will() == Message("homie/5/store-climate/$state", b"lost", retain=True)
    assert talker.birth() == Message("homie/5/store-climate/$state", b"ready", retain=True)
    assert talker.goodbye() == [Message("homie/5/store-climate/$state", b"disconnected", retain=True)]
    [description] = talker.announcements()
    assert description.topic == "homie/5/store-climate/$description" and description.retain
    document = json.loads(description.payload)
    assert document["homie"] == "5.0" and isinstance(document["version"], int)
    properties = document["nodes"]["climate"]["properties"]
    assert properties["temperature"]["datatype"] == "float" and properties["temperature"]["unit"] == "°C"
    assert properties["humidity"]["unit"] == "%"
    values = by_topic(talker.readings({"temperature": 15.25, "humidity": 60.0}, NOW))
    assert values["homie/5/store-climate/climate/temperature"].payload == b"15.25"
    assert values["homie/5/store-climate/climate/humidity"] == Message(
        "homie/5/store-climate/climate/humidity", b"60.0", retain=True)


def test_homie_switch_obeys_set_and_publishes_the_value_it_took():
    switch = speaker("homie", "heater", "office-heater")
    assert switch.command_filters() == ["homie/5/office-heater/switch/state/set"]
    [document] = switch.announcements()
    assert json.loads(document.payload)["nodes"]["switch"]["properties"]["state"]["settable"] is True
    [value] = obey(switch, "homie/5/office-heater/switch/state/set", b"true")
    assert value == Message("homie/5/office-heater/switch/state", b"true", retain=True)
    with pytest.raises(InvalidInput, match="a boolean is `true` or `false`"):
        switch.command(Message("homie/5/office-heater/switch/state/set", b"ON"))


def test_homie_valve_takes_a_position():
    valve = speaker("homie", "valve", "plant-valve")
    [value] = obey(valve, "homie/5/plant-valve/valve/position/set", b"40")
    assert value.payload == b"40.0"
    with pytest.raises(InvalidInput, match="outside 0:100"):
        valve.command(Message("homie/5/plant-valve/valve/position/set", b"140"))
    assert valve.command(Message("t", b"0")) == Change(position=0.0)
