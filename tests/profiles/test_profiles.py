"""Each device convention's decoding, commands and topic keys, on messages from its documentation."""
from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from gateway.errors import InvalidInput
from gateway.events import ActuationRequestedV1, Measurement
from gateway.profiles import PROFILES, Memory, Report, profile_of

NOW = datetime.now(UTC)


def decode(topic: str, payload: bytes | str, memory: Memory | None = None) -> list[Report]:
    found = profile_of(topic)
    assert found is not None, topic
    payload = payload.encode() if isinstance(payload, str) else payload
    return found[0].decode(topic, payload, NOW, memory if memory is not None else Memory())


def values(report: Report) -> dict[str, tuple[str, float]]:
    return {m.name: (m.unit, m.value) for m in report.measurements}


def rejected(topic: str, payload: bytes | str, memory: Memory | None = None) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode(topic, payload, memory)
    return caught.value.message


ON = ActuationRequestedV1(state="on", reason="temperature.high in lab")
OFF = ActuationRequestedV1(state="off", reason="cooled down")


# Zigbee2MQTT ----------------------------------------------------------------------------------------------------------
# https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html, "zigbee2mqtt/FRIENDLY_NAME"

def test_zigbee2mqtt_documented_sensor_state_becomes_celsius_and_relative_humidity():
    [report] = decode("zigbee2mqtt/0x00158d0001a2b3c4", '{\n"temperature": 27.34,\n"humidity": 44.72\n}')
    assert report.native == "0x00158d0001a2b3c4"
    assert values(report) == {"temperature": ("Cel", 27.34), "humidity": ("%RH", 44.72)}


def test_zigbee2mqtt_battery_percent_is_told_apart_from_humidity_and_unknown_keys_are_kept_out():
    [report] = decode("zigbee2mqtt/kitchen", '{"humidity": 40, "battery": 97, "linkquality": 120, "voltage": 3005}')
    assert values(report) == {"humidity": ("%RH", 40.0), "battery": ("%EL", 97.0)}
    assert report.kept_out == ("linkquality", "voltage")


def test_zigbee2mqtt_occupancy_contact_and_switch_state():
    [motion] = decode("zigbee2mqtt/hall", '{"occupancy": true}')  # RTCGQ01LM, same page
    assert values(motion) == {"motion": ("/", 1.0)}
    [door] = decode("zigbee2mqtt/door", '{"contact": true}')  # contact true: closed
    assert values(door) == {"door_open": ("/", 0.0)}
    [bulb] = decode("zigbee2mqtt/bulb", '{"state": "ON", "brightness": 215, "color_temp": 325}')  # LED1545G12
    assert bulb.state == "on" and bulb.kept_out == ("brightness", "color_temp")


def test_zigbee2mqtt_energy_in_kwh_becomes_wh():
    [plug] = decode("zigbee2mqtt/plug", '{"power": 35.5, "energy": 1.25}')
    assert values(plug) == {"power": ("W", 35.5), "energy": ("Wh", 1250.0)}


def test_zigbee2mqtt_availability_in_both_forms():
    assert decode("zigbee2mqtt/kitchen/availability", '{"state":"online"}')[0].online is True
    assert decode("zigbee2mqtt/kitchen/availability", "offline")[0].online is False


def test_zigbee2mqtt_bridge_devices_announce_every_paired_device_but_the_coordinator():
    devices = [{"ieee_address": "0x00124b0001", "type": "Coordinator", "friendly_name": "Coordinator"},
               {"ieee_address": "0x00158d0001", "type": "EndDevice", "friendly_name": "kitchen",
                "definition": {"model": "WSDCGQ01LM", "vendor": "Xiaomi",
                               "description": "MiJia temperature & humidity sensor"}}]
    [report] = decode("zigbee2mqtt/bridge/devices", json.dumps(devices))
    assert report.native == "kitchen"
    assert report.announced == "Xiaomi WSDCGQ01LM MiJia temperature & humidity sensor (0x00158d0001)"
    assert decode("zigbee2mqtt/bridge/state", '{"state":"online"}') == []


@pytest.mark.parametrize("payload,reason", [
    ('{"temperature": "27.34"}', "zigbee2mqtt: field 'temperature': must be a number, got str '27.34'"),
    ('{"temperature": {"value": 27.34}}', "zigbee2mqtt: field 'temperature': must be a number, got dict"),
    ('{"occupancy": "yes"}', "zigbee2mqtt: field 'occupancy': must be true or false, got str"),
    ('{"state": "MAYBE"}', "zigbee2mqtt: field 'state': must be ON or OFF, got 'MAYBE'"),
    ('{"state": {"on": true}}', "zigbee2mqtt: field 'state': must be ON or OFF, got \"{'on': True}\""),
    ("[1, 2]", "zigbee2mqtt: payload must be a JSON object, got list"),
])
def test_zigbee2mqtt_bad_input_names_profile_field_and_reason(payload, reason):
    assert rejected("zigbee2mqtt/kitchen", payload).startswith(reason)


def test_a_json_object_where_a_word_belongs_is_refused_naming_the_field():
    assert rejected("zigbee2mqtt/kitchen/availability", '{"state": ["online"]}').startswith(
        "zigbee2mqtt: field 'state': availability must be online or offline, got \"['online']\"")
    assert rejected("stat/sonoff-th/RESULT", '{"POWER": {"1": "ON"}}').startswith(
        "tasmota: field 'POWER': must be ON or OFF, got \"{'1': 'ON'}\"")


def test_zigbee2mqtt_command():
    assert PROFILES["zigbee2mqtt"].command("fan-plug", ON) == [("zigbee2mqtt/fan-plug/set", b'{"state":"ON"}')]
    assert PROFILES["zigbee2mqtt"].command("fan-plug", OFF) == [("zigbee2mqtt/fan-plug/set", b'{"state":"OFF"}')]


# Tasmota --------------------------------------------------------------------------------------------------------------
# https://tasmota.github.io/docs/AM2301/ ("Sensor sends a tele/%topic%/SENSOR JSON reponse")
AM2301 = ('{\n  "Time": "2019-01-01T00:00:00",\n  "AM2301": {\n    "Temperature": 24.6,\n    "Humidity": 58.2\n  },\n'
          '  "TempUnit": "C"\n}')


def test_tasmota_documented_am2301_reading():
    [report] = decode("tele/sonoff-th/SENSOR", AM2301)
    assert report.native == "sonoff-th" and report.time is None  # Time is local, without an offset
    assert values(report) == {"temperature": ("Cel", 24.6), "humidity": ("%RH", 58.2)}


def test_tasmota_fahrenheit_is_converted_and_dew_point_kept_out():
    payload = ('{"Time":"2019-11-03T19:34:34","AM2301":{"Temperature":77.0,"Humidity":35.2,"DewPoint":14.3},'
               '"TempUnit":"F"}')
    [report] = decode("tele/sonoff-th/SENSOR", payload)
    assert values(report) == {"temperature": ("Cel", 25.0), "humidity": ("%RH", 35.2)}
    assert report.kept_out == ("AM2301.DewPoint",)


def test_tasmota_energy_monitor():
    payload = '{"Time":"2026-01-01T10:00:00","ENERGY":{"Total":12.5,"Yesterday":0.1,"Today":0.2,"Power":35}}'
    [report] = decode("tele/pow/SENSOR", payload)
    assert values(report) == {"energy": ("Wh", 12500.0), "power": ("W", 35.0)}
    assert report.kept_out == ("ENERGY.Yesterday", "ENERGY.Today")


def test_tasmota_documented_power_result_lwt_and_state():
    # https://tasmota.github.io/docs/MQTT/, "Command flow": stat/tasmota_switch/RESULT → {"POWER":"ON"}
    assert decode("stat/tasmota_switch/RESULT", '{"POWER":"ON"}')[0].state == "on"
    assert decode("tele/tasmota_switch/STATE", '{"Time":"2026-01-01T10:00:00","POWER":"OFF"}')[0].state == "off"
    assert decode("tele/tasmota_switch/LWT", "Online")[0].online is True
    assert decode("tele/tasmota_switch/LWT", "Offline")[0].online is False
    assert decode("stat/tasmota_switch/RESULT", '{"TelePeriod":300}') == []


@pytest.mark.parametrize("payload,reason", [
    ('{"DS18B20":{"Temperature":20.6}}', "tasmota: field 'TempUnit': missing: DS18B20.Temperature has no unit"),
    ('{"Temperature":20.6,"TempUnit":"C"}', "tasmota: field 'Temperature': a reading belongs inside its sensor's"),
    ('{"AM2301":{"Temperature":"20.6"},"TempUnit":"C"}', "tasmota: field 'AM2301.Temperature': must be a number"),
    ('{"AM2301":{"Temperature":20.6},"TempUnit":"K"}', "tasmota: field 'AM2301.Temperature': unit 'K' is not one of"),
])
def test_tasmota_bad_input_names_profile_field_and_reason(payload, reason):
    assert rejected("tele/sonoff-th/SENSOR", payload).startswith(reason)


def test_tasmota_command():
    assert PROFILES["tasmota"].command("sonoff-fan", ON) == [("cmnd/sonoff-fan/POWER", b"ON")]


# Shelly Gen2 ----------------------------------------------------------------------------------------------------------
# https://shelly-api-docs.shelly.cloud/gen2/General/Notifications, NotifyStatus "Example 1"
SHELLY_EXAMPLE_1 = ('{\n"src": "shellypro4pm-f008d1d8b8b8",\n"dst": "user_1",\n"method": "NotifyStatus",\n"params": {\n'
                    '"ts": 1631186545.04,\n"switch:0": {\n"id": 0,\n"output": true,\n"source": "button"\n}\n}\n}')


def test_shelly_documented_switch_notification():
    [report] = decode("shellypro4pm-f008d1d8b8b8/events/rpc", SHELLY_EXAMPLE_1)
    assert (report.native, report.state, report.measurements) == ("shellypro4pm-f008d1d8b8b8", "on", ())
    assert report.time is None  # a clock years off is not trusted: ingest stamps it
    for ts in (-1e12, 1e15):  # before year 1 and after 9999: not a date at all
        frame = {"method": "NotifyStatus", "params": {"ts": ts, "switch:0": {"output": True}}}
        assert decode("shellypro4pm-f008d1d8b8b8/events/rpc", json.dumps(frame))[0].time is None


def test_shelly_temperature_humidity_power_battery_and_device_clock():
    params = {"ts": NOW.timestamp(), "temperature:0": {"id": 0, "tC": 21.3, "tF": 70.3},
              "humidity:0": {"id": 0, "rh": 45.1}, "switch:0": {"id": 0, "output": False, "apower": 0.0,
                                                             "aenergy": {"total": 1520.4}},
              "devicepower:0": {"id": 0, "battery": {"V": 4.1, "percent": 88}}, "wifi": {"rssi": -60},
              "switch:1": {"id": 1, "output": True}}
    frame = {"src": "shellyht-1", "dst": "shellyht-1/events", "method": "NotifyStatus", "params": params}
    [report] = decode("shellyht-1/events/rpc", json.dumps(frame))
    assert values(report) == {"temperature": ("Cel", 21.3), "humidity": ("%RH", 45.1), "power": ("W", 0.0),
                              "energy": ("Wh", 1520.4), "battery": ("%EL", 88.0)}
    assert report.state == "off" and report.kept_out == ("wifi", "switch:1")
    assert abs((report.time - NOW).total_seconds()) < 0.01


def test_shelly_fahrenheit_only_is_converted_and_online_topic():
    frame = {"method": "NotifyStatus", "params": {"temperature:0": {"id": 0, "tF": 68.0}}}
    assert values(decode("shelly-x/events/rpc", json.dumps(frame))[0]) == {"temperature": ("Cel", 20.0)}
    assert decode("shelly-x/online", "true")[0].online is True
    assert decode("shelly-x/events/rpc", '{"method":"NotifyEvent","params":{"ts":1,"events":[]}}') == []


@pytest.mark.parametrize("params,reason", [
    ({"temperature:0": {"tC": "21.3"}}, "shelly: field 'params.temperature:0.tC': must be a number, got str"),
    ({"temperature:0": 21.3}, "shelly: field 'params.temperature:0': must be an object, got float"),
    ({"Switch 0": {"output": True}}, "shelly: field 'params.Switch 0': is not a component (type or type:id)"),
    ({"switch:0": {"output": "on"}}, "shelly: field 'params.switch:0.output': must be true or false, got str"),
])
def test_shelly_bad_input_names_profile_field_and_reason(params, reason):
    assert rejected("shelly-x/events/rpc", json.dumps({"method": "NotifyStatus", "params": params})).startswith(reason)


def test_shelly_command_is_a_switch_set_frame_answered_on_the_bridge_topic():
    [(topic, payload)] = PROFILES["shelly"].command("shellyplus1-a8032abe54dc", ON)
    frame = json.loads(payload)
    assert topic == "shellyplus1-a8032abe54dc/rpc"
    assert frame["method"] == "Switch.Set" and frame["params"] == {"id": 0, "on": True}
    assert frame["src"] == "choreo-shellyplus1-a8032abe54dc" and isinstance(frame["id"], int)


# Homie 5 --------------------------------------------------------------------------------------------------------------
# https://homieiot.github.io/specification/spec-core-v5_0_0/: the `super-car` example's `engine` node and its
# `temperature` property ({"name": "Engine temperature", "unit": "°C", "datatype": "float", "format": "-20:120"}),
# whose value is published as `homie/5/super-car/engine/temperature → "21.5"`.
SUPER_CAR = {"homie": "5.0", "version": 7, "name": "Super car", "nodes": {"engine": {"name": "Car engine",
             "properties": {"temperature": {"name": "Engine temperature", "unit": "°C", "datatype": "float",
                                            "format": "-20:120"}}}}}


def test_homie_documented_property_value_after_its_description():
    memory = Memory()
    [announced] = decode("homie/5/super-car/$description", json.dumps(SUPER_CAR), memory)
    assert announced.announced == "Super car: engine/temperature"
    [report] = decode("homie/5/super-car/engine/temperature", "21.5", memory)
    assert values(report) == {"temperature": ("Cel", 21.5)}
    assert decode("homie/5/super-car/$state", "ready", memory)[0].online is True
    assert decode("homie/5/super-car/$state", "lost", memory)[0].online is False
    assert decode("homie/5/super-car/$state", "init", memory) == []


def test_homie_descriptions_beyond_the_memorys_limit_forget_the_oldest_counted():
    counts: Counter[str] = Counter()
    memory = Memory(limit=1, counts=counts, counter="forgotten:homie")
    decode("homie/5/super-car/$description", json.dumps(SUPER_CAR), memory)
    decode("homie/5/other-car/$description", json.dumps(SUPER_CAR), memory)
    assert list(memory) == ["other-car"] and counts["forgotten:homie"] == 1
    assert "no $description of super-car" in rejected("homie/5/super-car/engine/temperature", "21.5", memory)


def test_homie_percent_by_meaning_fahrenheit_switch_and_list_form():
    memory = Memory()
    nodes = [{"id": "climate", "properties": [
        {"id": "temperature", "datatype": "float", "unit": "°F"}, {"id": "humidity", "datatype": "float", "unit": "%"},
        {"id": "battery", "datatype": "integer", "unit": "%"}, {"id": "rssi", "datatype": "integer", "unit": "dBm"}]},
        {"id": "switch", "properties": [{"id": "state", "datatype": "boolean", "settable": True}]}]
    decode("homie/5/th-1/$description", json.dumps({"homie": "5.0", "name": "th", "nodes": nodes}), memory)
    assert values(decode("homie/5/th-1/climate/temperature", "212", memory)[0]) == {"temperature": ("Cel", 100.0)}
    assert values(decode("homie/5/th-1/climate/humidity", "40", memory)[0]) == {"humidity": ("%RH", 40.0)}
    assert values(decode("homie/5/th-1/climate/battery", "90", memory)[0]) == {"battery": ("%EL", 90.0)}
    assert decode("homie/5/th-1/climate/rssi", "-60", memory)[0].kept_out == ("climate/rssi",)
    assert decode("homie/5/th-1/switch/state", "true", memory)[0].state == "on"


@pytest.mark.parametrize("topic,payload,reason", [
    ("homie/5/th-1/climate/temperature", "warm", "homie: field 'climate/temperature': must be a number, got 'warm'"),
    ("homie/5/th-1/climate/humidity", "40", "homie: field 'climate/humidity.unit': missing in the $description"),
    ("homie/5/th-1/climate/co2", "400", "homie: field 'climate/co2': is not in the $description of th-1"),
    ("homie/5/other/climate/temperature", "20", "homie: field 'climate/temperature': no $description of other"),
])
def test_homie_bad_input_names_profile_field_and_reason(topic, payload, reason):
    memory = Memory()
    nodes = {"climate": {"properties": {"temperature": {"datatype": "float", "unit": "°C"},
                                        "humidity": {"datatype": "float"}}}}
    decode("homie/5/th-1/$description", json.dumps({"homie": "5.0", "name": "th", "nodes": nodes}), memory)
    assert rejected(topic, payload, memory).startswith(reason)


def test_homie_commands():
    assert PROFILES["homie"].command("fan-1", ON) == [("homie/5/fan-1/switch/state/set", b"true")]
    valve = ActuationRequestedV1(position=40, reason="open a bit")
    assert PROFILES["homie"].command("valve-1", valve) == [("homie/5/valve-1/valve/position/set", b"40.0")]


# Every profile --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("topic,expected", [
    ("devices/lab-temperature-1/telemetry", ("native", "lab-temperature-1")),
    ("zigbee2mqtt/kitchen", ("zigbee2mqtt", "kitchen")),
    ("zigbee2mqtt/kitchen/availability", ("zigbee2mqtt", "kitchen")),
    ("tele/sonoff-th/SENSOR", ("tasmota", "sonoff-th")),
    ("stat/sonoff-th/RESULT", ("tasmota", "sonoff-th")),
    ("homie/5/super-car/engine/temperature", ("homie", "super-car")),
    ("shellyplus1-a8032abe54dc/events/rpc", ("shelly", "shellyplus1-a8032abe54dc")),
    ("shellyplus1-a8032abe54dc/online", ("shelly", "shellyplus1-a8032abe54dc")),
])
def test_each_topic_belongs_to_one_profile_and_names_its_device(topic, expected):
    profile, key = profile_of(topic)
    assert (profile.name, key) == expected


def test_a_topic_of_no_profile_has_no_key():
    assert profile_of("somewhere/else/entirely") is None


def test_a_relay_command_needs_a_state():
    with pytest.raises(InvalidInput, match="takes a state"):
        PROFILES["tasmota"].command("x", ActuationRequestedV1(position=10, reason="r"))


def test_every_profile_subscribes_within_the_topics_its_devices_may_write():
    for profile in PROFILES.values():
        assert profile.subscriptions and all("#" not in topic for topic in profile.subscriptions)
        assert profile.acl or profile.name == "homeassistant"  # written by the bridge's account


def test_a_measurement_is_built_only_from_known_units():
    from gateway.profiles.units import measurement
    assert measurement("temperature", "W", 1.0) is None
    assert measurement("humidity", "%", 50.0) == Measurement(name="humidity", unit="%RH", value=50.0)
    assert measurement("co2", "%", 5.0) is None


# Home Assistant discovery ---------------------------------------------------------------------------------------------
# https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery: <prefix>/<component>/[<node_id>/]<object_id>/config

def test_a_discovery_config_announces_the_device_of_its_state_topics_convention():
    config = {"device": {"identifiers": ["zigbee2mqtt_0x00158d0002"], "manufacturer": "Xiaomi",
                         "model": "MiJia human body movement sensor (RTCGQ01LM)", "name": "hallway_motion"},
              "state_topic": "zigbee2mqtt/hallway_motion", "device_class": "motion", "name": "Occupancy"}
    [report] = decode("homeassistant/binary_sensor/0x00158d0002/occupancy/config", json.dumps(config))
    assert (report.speaks, report.native) == ("zigbee2mqtt", "hallway_motion")
    assert report.announced == ("Xiaomi MiJia human body movement sensor (RTCGQ01LM) hallway_motion "
                                "(binary_sensor, Home Assistant discovery)")


def test_a_discovery_config_with_abbreviations_and_a_foreign_state_topic_names_its_node():
    config = {"dev": {"ids": ["aqi"], "mf": "SuperJonotron", "mdl": "PMS5003"}, "stat_t": "device/aqi/500291D66C79"}
    [report] = decode("homeassistant/sensor/aqi-node/aqi/config", json.dumps(config))
    assert (report.speaks, report.native) == ("homeassistant", "aqi-node")
    assert decode("homeassistant/sensor/aqi-node/aqi/config", b"") == []  # withdrawn
    assert rejected("homeassistant/sensor/aqi-node/aqi/config", '{"dev": "PMS5003"}').startswith(
        "homeassistant: field 'device': must be an object")
