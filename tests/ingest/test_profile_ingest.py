"""Ingest on profile devices: facts placed by the registry, discovery once, causation of state reports."""
from __future__ import annotations

import json
from collections import Counter

from gateway.events import (
    ActuationRequestedV1,
    ActuatorChangedV1,
    DeviceDiscoveredV1,
    DeviceOfflineV1,
    DeviceOnlineV1,
    EventRejectedV1,
    ReadingV1,
    new_event,
)
from gateway.fleet import Fleet, Registry
from gateway.ingest.causation import PendingRequests
from gateway.ingest.service import Ingest
from gateway.transport import Message

FLEET = Fleet.model_validate({"sites": [{"id": "hq", "rooms": [{"id": "lab", "devices": [
    {"kind": "temperature", "profile": "tasmota", "native": "sonoff-th"},
    {"kind": "fan", "profile": "zigbee2mqtt", "native": "fan-plug"},
    {"kind": "door", "profile": "zigbee2mqtt", "native": "door-contact"},
    {"kind": "temperature"},
]}]}]})
AM2301 = b'{"Time":"2019-01-01T00:00:00","AM2301":{"Temperature":24.6,"Humidity":58.2},"TempUnit":"C"}'


def ingest() -> Ingest:
    return Ingest(Registry(FLEET))


def test_a_registry_device_speaking_tasmota_becomes_a_located_reading_under_its_fleet_id():
    [event] = ingest().facts(Message("tele/sonoff-th/SENSOR", AM2301))
    assert isinstance(event.data, ReadingV1)
    assert (event.subject, event.source) == ("lab-temperature-1", "device/lab-temperature-1")
    assert (event.data.site, event.data.room, event.data.kind) == ("hq", "lab", "temperature")
    assert [(m.name, m.unit, m.value) for m in event.data.measurements] == [
        ("temperature", "Cel", 24.6), ("humidity", "%RH", 58.2)]


def test_an_unknown_device_is_discovered_once_and_nothing_else_is_taken_from_it():
    service = ingest()
    [event] = service.facts(Message("tele/unknown-plug/SENSOR", AM2301))
    assert isinstance(event.data, DeviceDiscoveredV1)
    assert (event.subject, event.data.profile, event.data.native) == ("unknown-plug", "tasmota", "unknown-plug")
    assert event.data.announced == "published on tele/unknown-plug/SENSOR"
    assert service.facts(Message("tele/unknown-plug/SENSOR", AM2301)) == []
    assert service.facts(Message("tele/unknown-plug/LWT", b"Online")) == []
    assert service.counts["unknown_device"] == 3 and service.counts["device.discovered.v1"] == 1


def test_bridge_devices_report_only_the_devices_the_registry_does_not_know():
    devices = [{"friendly_name": "fan-plug", "type": "Router"}, {"friendly_name": "Living room", "type": "EndDevice",
                                                                  "definition": {"vendor": "IKEA", "model": "E1"}}]
    [event] = ingest().facts(Message("zigbee2mqtt/bridge/devices", json.dumps(devices).encode(), retain=True))
    assert isinstance(event.data, DeviceDiscoveredV1)
    assert (event.data.native, event.subject, event.data.announced) == ("Living room", "unknown", "IKEA E1 (?)")


def test_availability_of_a_profile_device():
    [event] = ingest().facts(Message("zigbee2mqtt/fan-plug/availability", b'{"state":"online"}', retain=True))
    assert isinstance(event.data, DeviceOnlineV1) and event.subject == "lab-fan-1"


def test_the_zigbee2mqtt_bridge_going_offline_takes_every_device_it_serves_offline():
    service = ingest()
    # The bridge's last will, as https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html documents it
    events = service.facts(Message("zigbee2mqtt/bridge/state", b'{"state":"offline"}', retain=True))
    assert all(isinstance(event.data, DeviceOfflineV1) for event in events)
    assert sorted(event.subject for event in events) == ["lab-door-1", "lab-fan-1"]
    assert service.facts(Message("zigbee2mqtt/bridge/state", b'{"state":"online"}', retain=True)) == []
    [rejected] = service.facts(Message("zigbee2mqtt/bridge/state", b'{"state":"gone"}'))
    assert isinstance(rejected.data, EventRejectedV1) and "zigbee2mqtt: field 'state'" in rejected.data.reason


def test_bad_input_is_rejected_naming_the_device_and_the_next_message_still_counts():
    service = ingest()
    [rejected] = service.facts(Message("tele/sonoff-th/SENSOR", b'{"AM2301":{"Temperature":"hot"},"TempUnit":"C"}'))
    assert isinstance(rejected.data, EventRejectedV1) and rejected.subject == "lab-temperature-1"
    assert rejected.data.reason.startswith("tasmota: field 'AM2301.Temperature': must be a number")
    [reading] = service.facts(Message("tele/sonoff-th/SENSOR", AM2301))
    assert isinstance(reading.data, ReadingV1)


def test_a_state_report_after_a_request_is_caused_by_it_and_repeats_are_not_facts():
    service = ingest()
    request = new_event(ActuationRequestedV1(state="on", reason="too warm"), source="reactor/climate",
                        subject="lab-fan-1")
    assert service.facts(Message("events/actuation.requested.v1/lab-fan-1", request.to_json())) == []
    [changed] = service.facts(Message("zigbee2mqtt/fan-plug", b'{"state":"ON","linkquality":90}'))
    assert isinstance(changed.data, ActuatorChangedV1) and changed.data.state == "on"
    assert (changed.causationid, changed.correlationid) == (request.id, request.correlationid)
    assert service.facts(Message("zigbee2mqtt/fan-plug", b'{"state":"ON"}')) == []  # unchanged, no request
    [manual] = service.facts(Message("zigbee2mqtt/fan-plug", b'{"state":"OFF"}'))  # someone pressed its button
    assert manual.causationid is None and manual.data.state == "off"


def test_a_request_to_a_native_actuator_is_not_remembered():
    service = ingest()
    request = new_event(ActuationRequestedV1(state="on", reason="r"), source="reactor/climate", subject="x-1")
    assert service.facts(Message("events/actuation.requested.v1/x-1", request.to_json())) == []
    assert service.counts["requests_not_ours"] == 1 and len(service.pending) == 0


def test_a_pending_request_expires_and_the_map_is_bounded():
    now = [0.0]
    counts: Counter[str] = Counter()
    pending = PendingRequests(counts, clock=lambda: now[0], seconds=30, limit=2)
    pending.remember("a", "r1", "c1")
    now[0] = 31
    assert pending.answered("a") is None and counts["requests_expired"] == 1
    for device in ("a", "b", "c"):
        pending.remember(device, "r", "c")
    assert len(pending) == 2 and counts["requests_forgotten"] == 1
    assert pending.answered("c") == ("r", "c")


def test_the_admission_key_of_a_profile_topic_is_the_fleet_id():
    service = ingest()
    assert service.device_key("zigbee2mqtt/fan-plug") == "lab-fan-1"
    assert service.device_key("tele/unknown-plug/SENSOR") == "unknown-plug"
    assert service.device_key("devices/lab-temperature-2/telemetry") == "lab-temperature-2"


def test_home_assistant_discovery_reports_an_unknown_zigbee_device_once_and_a_known_one_not_at_all():
    service = ingest()
    unknown = {"device": {"manufacturer": "Xiaomi", "model": "RTCGQ01LM", "name": "hallway"},
               "state_topic": "zigbee2mqtt/hallway"}
    known = {"device": {"name": "fan-plug"}, "state_topic": "zigbee2mqtt/fan-plug"}
    [event] = service.facts(Message("homeassistant/binary_sensor/0x1/occupancy/config",
                                    json.dumps(unknown).encode(), retain=True))
    assert isinstance(event.data, DeviceDiscoveredV1)
    assert (event.data.profile, event.data.native) == ("zigbee2mqtt", "hallway")
    assert service.facts(Message("zigbee2mqtt/hallway", b'{"occupancy": true}')) == []  # the same device
    assert service.facts(Message("homeassistant/switch/0x2/switch/config", json.dumps(known).encode())) == []
    assert service.counts["announced"] == 1
