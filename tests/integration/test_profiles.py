"""Device conventions on a real broker: messages copied from each convention's documentation, published
by the device's own broker account, become the facts they stand for; the generated ACL keeps each
device (and the Zigbee2MQTT bridge) to its own topics. One broker, one ingest process.

Sources of the messages:
- Zigbee2MQTT: https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html (zigbee2mqtt/FRIENDLY_NAME,
  the Xiaomi WSDCGQ01LM example; zigbee2mqtt/FRIENDLY_NAME/availability)
- Tasmota: https://tasmota.github.io/docs/AM2301/ (the tele/%topic%/SENSOR response) and
  https://tasmota.github.io/docs/MQTT/ ("Command flow": stat/tasmota_switch/RESULT → {"POWER":"ON"})
- Shelly Gen2: https://shelly-api-docs.shelly.cloud/gen2/General/Notifications (NotifyStatus, Example 1)
- Homie 5: https://homieiot.github.io/specification/spec-core-v5_0_0/ (the super-car's engine temperature
  property and its value "21.5")
- Home Assistant discovery: https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery
"""
from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.credentials import device_password
from gateway.declarations import declarations
from gateway.fleet import Fleet
from gateway.localstack import LocalStack
from gateway.settings import load_settings
from tests.conftest import ServiceProcesses
from tests.helpers import MqttObserver, wait_for

pytestmark = pytest.mark.integration

FLEET = """
[[sites]]
id = "hq"
[[sites.rooms]]
id = "lab"
devices = [
  { kind = "temperature", profile = "zigbee2mqtt", native = "kitchen_th" },
  { kind = "temperature", profile = "tasmota", native = "sonoff-th" },
  { kind = "temperature", profile = "homie", native = "super-car" },
  { kind = "fan", profile = "shelly", native = "shellypro4pm-f008d1d8b8b8" },
  { kind = "fan", profile = "tasmota", native = "tasmota_switch" },
]
"""
Z2M_STATE = b'{\n"temperature": 27.34,\n"humidity": 44.72\n}'
AM2301 = (b'{\n  "Time": "2019-01-01T00:00:00",\n  "AM2301": {\n    "Temperature": 24.6,\n    "Humidity": 58.2\n  },\n'
          b'  "TempUnit": "C"\n}')
SHELLY_EXAMPLE_1 = (b'{\n"src": "shellypro4pm-f008d1d8b8b8",\n"dst": "user_1",\n"method": "NotifyStatus",\n'
                    b'"params": {\n"ts": 1631186545.04,\n"switch:0": {\n"id": 0,\n"output": true,\n'
                    b'"source": "button"\n}\n}\n}')
SUPER_CAR = json.dumps({"homie": "5.0", "version": 7, "name": "Super car", "nodes": {"engine": {
    "name": "Car engine", "properties": {"temperature": {"name": "Engine temperature", "unit": "°C",
                                                         "datatype": "float", "format": "-20:120"}}}}}).encode()
PAIRED = json.dumps([{"ieee_address": "0x00158d0001", "type": "EndDevice", "friendly_name": "kitchen_th"},
                     {"ieee_address": "0x00158d0002", "type": "EndDevice", "friendly_name": "hallway_motion",
                      "definition": {"vendor": "Xiaomi", "model": "RTCGQ01LM"}}]).encode()


@pytest.fixture(scope="module")
def with_restart(tmp_path_factory):
    """One broker with the fleet's accounts, one ingest process reading the fleet file, an admin observer,
    and a function that stops ingest, runs `while_down`, and starts it again (its session kept, as in production)."""
    folder: Path = tmp_path_factory.mktemp("profiles")
    fleet_file = folder / "fleet.toml"
    fleet_file.write_text(FLEET)
    settings = {"CHOREO_FLEET_FILE": str(fleet_file)}
    processes = ServiceProcesses(folder)
    declared = declarations(load_settings(settings))
    with LocalStack(folder / "stack", Fleet.load(fleet_file).accounts(), declared) as stack, \
            MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "profiles-observer") as observer:
        observer.subscribe("#")

        def start_ingest() -> None:
            pid = processes.start("ingest", ["ingest"], {**stack.env("ingest"), **settings}).pid
            wait_for(lambda: any(m["status"] == "online" and m["instance"].endswith(f":{pid}")
                                 for m in observer.manifests("ingest")), 30,
                     f"ingest online (log: {folder / 'ingest.log'})")

        def restart_ingest(while_down: Callable[[], None] = lambda: None) -> None:
            processes.stop_all()
            while_down()
            start_ingest()

        try:
            start_ingest()
            yield stack, observer, restart_ingest
        finally:
            processes.stop_all()


@pytest.fixture(scope="module")
def running(with_restart):
    stack, observer, _ = with_restart
    return stack, observer


def device(stack: LocalStack, account: str) -> MqttObserver:
    password = device_password(stack.credentials.fleet_secret, account)
    return MqttObserver(stack.broker.device_port, account, password, client_id=account)


def facts(observer: MqttObserver, event_type: str, subject: str) -> list[dict]:
    return [json.loads(m.payload) for m in observer.on(f"events/{event_type}/{subject}")]


def measured(fact: dict) -> dict[str, tuple[str, float]]:
    return {m["name"]: (m["unit"], m["value"]) for m in fact["data"]["measurements"]}


def test_documented_messages_become_the_facts_they_stand_for(running):
    stack, observer = running
    with device(stack, "zigbee2mqtt") as bridge, device(stack, "sonoff-th") as sonoff, \
            device(stack, "super-car") as homie, device(stack, "shellypro4pm-f008d1d8b8b8") as shelly, \
            device(stack, "tasmota_switch") as switch:
        bridge.publish("zigbee2mqtt/kitchen_th/availability", b'{"state":"online"}', retain=True)
        bridge.publish("zigbee2mqtt/kitchen_th", Z2M_STATE)
        sonoff.publish("tele/sonoff-th/SENSOR", AM2301)
        homie.publish("homie/5/super-car/$description", SUPER_CAR, retain=True)
        homie.publish("homie/5/super-car/engine/temperature", b"21.5", retain=True)
        shelly.publish("shellypro4pm-f008d1d8b8b8/events/rpc", SHELLY_EXAMPLE_1)
        switch.publish("stat/tasmota_switch/RESULT", b'{"POWER":"ON"}')

        [z2m] = wait_for(lambda: facts(observer, "reading.v1", "lab-temperature-1"), 20, "the Zigbee2MQTT reading")
        assert measured(z2m) == {"temperature": ("Cel", 27.34), "humidity": ("%RH", 44.72)}
        assert (z2m["source"], z2m["data"]["room"], z2m["data"]["kind"]) == ("device/lab-temperature-1", "lab",
                                                                             "temperature")
        assert wait_for(lambda: facts(observer, "device.online.v1", "lab-temperature-1"), 20, "z2m availability")
        [tasmota] = wait_for(lambda: facts(observer, "reading.v1", "lab-temperature-2"), 20, "the Tasmota reading")
        assert measured(tasmota) == {"temperature": ("Cel", 24.6), "humidity": ("%RH", 58.2)}
        [homie_fact] = wait_for(lambda: facts(observer, "reading.v1", "lab-temperature-3"), 20, "the Homie reading")
        assert measured(homie_fact) == {"temperature": ("Cel", 21.5)}
        [shelly_fact] = wait_for(lambda: facts(observer, "actuator.changed.v1", "lab-fan-1"), 20, "the Shelly switch")
        assert shelly_fact["data"]["state"] == "on" and shelly_fact["data"]["kind"] == "fan"
        [switched] = wait_for(lambda: facts(observer, "actuator.changed.v1", "lab-fan-2"), 20, "the Tasmota RESULT")
        assert switched["data"]["state"] == "on"


def super_car_reading(observer: MqttObserver, value: float) -> None:
    """Wait until ingest has made the super-car's engine temperature `value` a reading."""
    wait_for(lambda: any(measured(f)["temperature"] == ("Cel", value)
                         for f in facts(observer, "reading.v1", "lab-temperature-3")), 20, f"the reading {value}")


def described_super_car(homie: MqttObserver, observer: MqttObserver, value: float) -> None:
    """Publish the super-car's $description, retained, and a first `value` that ingest decodes by it."""
    homie.publish("homie/5/super-car/$description", SUPER_CAR, retain=True)
    homie.publish("homie/5/super-car/engine/temperature", f"{value}".encode())
    super_car_reading(observer, value)


def test_ingest_reads_a_homie_description_again_when_it_restarts(with_restart):
    """Homie describes a device once, retained; a restart that kept ingest's session and lost the
    description ingest kept on disk must still get it from the broker, or every value is refused."""
    stack, observer, restart_ingest = with_restart
    with device(stack, "super-car") as homie:
        described_super_car(homie, observer, 22.5)
        restart_ingest(while_down=lambda: shutil.rmtree(stack.state_dir / "ingest"))
        homie.publish("homie/5/super-car/engine/temperature", b"23.5")
        super_car_reading(observer, 23.5)
    assert not facts(observer, "event.rejected.v1", "lab-temperature-3")


def test_homie_values_sent_while_ingest_was_down_are_decoded_with_the_description_it_kept(with_restart):
    """The broker hands a kept session its backlog before the retained $description a new subscription
    brings; ingest decodes the backlog with the description it kept on disk, and refuses none of it."""
    stack, observer, restart_ingest = with_restart
    with device(stack, "super-car") as homie:
        described_super_car(homie, observer, 25.5)
        restart_ingest(while_down=lambda: homie.publish_all(
            [("homie/5/super-car/engine/temperature", f"{value}".encode()) for value in (26.5, 27.5)]))
        super_car_reading(observer, 26.5)
        super_car_reading(observer, 27.5)
    assert not facts(observer, "event.rejected.v1", "lab-temperature-3")


def test_bad_input_is_rejected_by_profile_and_field_and_the_device_goes_on(running):
    stack, observer = running
    with device(stack, "sonoff-th") as sonoff:
        sonoff.publish("tele/sonoff-th/SENSOR", b'{"AM2301":{"Temperature":"31.4"},"TempUnit":"C"}')
        sonoff.publish("tele/sonoff-th/SENSOR", AM2301.replace(b"24.6", b"31.4"))
        [rejected] = wait_for(lambda: facts(observer, "event.rejected.v1", "lab-temperature-2"), 20, "the rejection")
        assert rejected["data"]["reason"].startswith("tasmota: field 'AM2301.Temperature': must be a number, got str")
        wait_for(lambda: any(measured(f)["temperature"] == ("Cel", 31.4)
                             for f in facts(observer, "reading.v1", "lab-temperature-2")), 20, "the next reading")


def test_a_device_the_registry_does_not_know_is_discovered_once(running):
    stack, observer = running
    with device(stack, "zigbee2mqtt") as bridge:
        bridge.publish("zigbee2mqtt/bridge/devices", PAIRED, retain=True)
        bridge.publish("zigbee2mqtt/hallway_motion", b'{"occupancy": true}')
        bridge.publish("zigbee2mqtt/hallway_motion", b'{"occupancy": false}')
        # https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery, as Zigbee2MQTT publishes it
        bridge.publish("homeassistant/sensor/0x00158d0003/temperature/config", json.dumps({
            "device": {"identifiers": ["zigbee2mqtt_0x00158d0003"], "manufacturer": "Xiaomi", "model": "WSDCGQ01LM",
                       "name": "garage_th"}, "state_topic": "zigbee2mqtt/garage_th", "unit_of_measurement": "°C"
        }).encode(), retain=True)
        bridge.publish("zigbee2mqtt/kitchen_th", b'{"temperature": 20.5}')  # after them: they were handled
        wait_for(lambda: any(measured(f) == {"temperature": ("Cel", 20.5)}
                             for f in facts(observer, "reading.v1", "lab-temperature-1")), 20, "the known device")
        [discovered] = facts(observer, "device.discovered.v1", "hallway_motion")
        assert discovered["data"] == {"profile": "zigbee2mqtt", "native": "hallway_motion",
                                      "announced": "Xiaomi RTCGQ01LM (0x00158d0002)",
                                      "topic": "zigbee2mqtt/bridge/devices"}
        assert facts(observer, "device.discovered.v1", "kitchen_th") == []  # in the registry
        [garage] = facts(observer, "device.discovered.v1", "garage_th")
        assert (garage["data"]["profile"], garage["data"]["announced"]) == (
            "zigbee2mqtt", "Xiaomi WSDCGQ01LM garage_th (sensor, Home Assistant discovery)")


@pytest.mark.parametrize("account,forbidden,allowed", [
    ("sonoff-th", "tele/tasmota_switch/SENSOR", "tele/sonoff-th/STATE"),  # another Tasmota device
    ("sonoff-th", "zigbee2mqtt/kitchen_th", "tele/sonoff-th/STATE"),  # the Zigbee2MQTT bridge's topics
    ("zigbee2mqtt", "tele/sonoff-th/SENSOR", "zigbee2mqtt/kitchen_th/availability"),  # the bridge, elsewhere
    ("super-car", "homie/5/other-car/engine/temperature", "homie/5/super-car/$state"),
    ("shellypro4pm-f008d1d8b8b8", "shellyplus1-a8032abe54dc/events/rpc", "shellypro4pm-f008d1d8b8b8/online"),
    ("shellypro4pm-f008d1d8b8b8", "choreo-shellyplus1-a8032abe54dc/rpc", "choreo-shellypro4pm-f008d1d8b8b8/rpc"),
    ("tasmota_switch", "devices/lab-temperature-4/telemetry", "stat/tasmota_switch/POWER"),
])
def test_a_device_publishes_only_its_own_topics(running, account, forbidden, allowed):
    """The allowed publish follows the forbidden one from the same client; MQTT keeps a client's order."""
    stack, observer = running
    marker = uuid.uuid4().hex.encode()
    with device(stack, account) as client:
        client.publish(forbidden, marker)
        client.publish(allowed, marker)
        wait_for(lambda: any(m.payload == marker for m in observer.on(allowed)), 20, f"{account} on {allowed}")
        assert not any(m.payload == marker for m in observer.on(forbidden))


def test_a_device_reads_only_its_own_commands(running):
    stack, observer = running
    admin = MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "profiles-commander")
    with admin, device(stack, "sonoff-th") as sonoff, device(stack, "zigbee2mqtt") as bridge:
        sonoff.subscribe("cmnd/#")
        sonoff.subscribe("zigbee2mqtt/#")
        bridge.subscribe("cmnd/#")
        bridge.subscribe("zigbee2mqtt/+/set")
        admin.publish("cmnd/tasmota_switch/POWER", b"ON")
        admin.publish("zigbee2mqtt/kitchen_th/set", b'{"state":"ON"}')
        admin.publish("cmnd/sonoff-th/POWER", b"OFF")
        wait_for(lambda: sonoff.on("cmnd/sonoff-th/POWER"), 20, "sonoff-th's own command")
        wait_for(lambda: bridge.on("zigbee2mqtt/kitchen_th/set"), 20, "the bridge's command")
        assert [m.topic for m in sonoff.messages] == ["cmnd/sonoff-th/POWER"]
        assert [m.topic for m in bridge.messages] == ["zigbee2mqtt/kitchen_th/set"]
