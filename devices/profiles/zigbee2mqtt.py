"""Zigbee2MQTT: one bridge client publishes for every Zigbee device it knows.

From https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html:
- `zigbee2mqtt/FRIENDLY_NAME`: the device's state as flat JSON, e.g. the Xiaomi MiJia temperature
  and humidity sensor (WSDCGQ01LM) `{"temperature": 27.34, "humidity": 44.72}`, the human body
  movement sensor (RTCGQ01LM) `{"occupancy": true}`, a plug `{"state": "ON"}`;
- `zigbee2mqtt/FRIENDLY_NAME/availability`: `{"state":"online"}` / `{"state":"offline"}`, retained;
- `zigbee2mqtt/FRIENDLY_NAME/set`: commands, e.g. `{"state": "ON"}`, `"OFF"` or `"TOGGLE"`;
- `zigbee2mqtt/bridge/state`: `{"state":"online"}`, retained, `{"state":"offline"}` as the last will;
- `zigbee2mqtt/bridge/devices`: retained list of every device with its `definition.exposes`,
  which carry each property's `unit` (`°C`, `%`, `ppm`, `W`, `kWh`) and `access` bits
  (1 published, 2 settable, 4 readable: https://www.zigbee2mqtt.io/guide/usage/exposes.html).
A contact sensor's `contact` is `true` while the door is closed (exposes: value_on false).
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from gateway.errors import InvalidInput
from gateway.transport import Message

from ..base import as_json
from .speaker import Change, Speaker, is_relay

BASE = "zigbee2mqtt"
ONLINE = as_json({"state": "online"})
OFFLINE = as_json({"state": "offline"})


def _numeric(name: str, unit: str, description: str) -> dict[str, Any]:
    return {"type": "numeric", "name": name, "property": name, "access": 1, "unit": unit,
            "description": description}


_BATTERY = _numeric("battery", "%", "Remaining battery in %")
_LINKQUALITY = {**_numeric("linkquality", "lqi", "Link quality (signal strength)"), "value_min": 0, "value_max": 255}
_SWITCH = {"type": "switch", "features": [{
    "type": "binary", "name": "state", "property": "state", "access": 7,
    "value_on": "ON", "value_off": "OFF", "value_toggle": "TOGGLE", "description": "On/off state of the switch"}]}

# kind -> (model, vendor, description, power source, exposes)
MODELS: dict[str, tuple[str, str, str, str, list[dict[str, Any]]]] = {
    "temperature": ("WSDCGQ01LM", "Xiaomi", "MiJia temperature & humidity sensor", "Battery", [
        _numeric("temperature", "°C", "Measured temperature value"),
        _numeric("humidity", "%", "Measured relative humidity"), _BATTERY, _LINKQUALITY]),
    "motion": ("RTCGQ01LM", "Xiaomi", "MiJia human body movement sensor", "Battery", [
        {"type": "binary", "name": "occupancy", "property": "occupancy", "access": 1,
         "value_on": True, "value_off": False, "description": "Indicates whether the device detected occupancy"},
        _BATTERY, _LINKQUALITY]),
    "door": ("MCCGQ01LM", "Xiaomi", "MiJia door & window contact sensor", "Battery", [
        {"type": "binary", "name": "contact", "property": "contact", "access": 1,
         "value_on": False, "value_off": True,
         "description": "Indicates if the contact is closed (= true) or open (= false)"},
        _BATTERY, _LINKQUALITY]),
    "power": ("ZNCZ02LM", "Xiaomi", "Mi power plug ZigBee", "Mains (single phase)", [  # as a meter: always on
        _numeric("power", "W", "Instantaneous measured power"),
        _numeric("energy", "kWh", "Sum of consumed energy"), _LINKQUALITY]),
    "fan": ("ZNCZ02LM", "Xiaomi", "Mi power plug ZigBee", "Mains (single phase)", [_SWITCH, _LINKQUALITY]),
    "heater": ("ZNCZ02LM", "Xiaomi", "Mi power plug ZigBee", "Mains (single phase)", [_SWITCH, _LINKQUALITY]),
}


class Zigbee2MqttSpeaker(Speaker):
    profile = "zigbee2mqtt"
    kinds = frozenset(MODELS)

    @property
    def _topic(self) -> str:
        return f"{BASE}/{self.native}"

    def will(self) -> Message:
        return Message(f"{BASE}/bridge/state", OFFLINE, retain=True)

    def birth(self) -> Message:
        return Message(f"{BASE}/bridge/state", ONLINE, retain=True)

    def announcements(self) -> list[Message]:
        return [Message(f"{self._topic}/availability", ONLINE, retain=True)]

    def goodbye(self) -> list[Message]:
        return [Message(f"{self._topic}/availability", OFFLINE, retain=True), self.will()]

    def readings(self, fields: dict[str, Any], now: datetime) -> list[Message]:
        payload = self._state(fields)
        battery = self.device.drain_battery()
        if battery is not None:
            payload["battery"] = round(battery)
        payload["linkquality"] = self.device.rng.randint(60, 200)
        return [Message(self._topic, as_json(payload))]

    def _state(self, fields: dict[str, Any]) -> dict[str, Any]:
        kind = self.device.spec.kind
        if kind == "motion":
            return {"occupancy": bool(fields["motion"])}
        if kind == "door":
            return {"contact": not fields["door_open"]}
        if kind == "power":
            return {"power": fields["power"], "energy": round(fields["energy"] / 1000, 6)}
        if is_relay(self.device):
            return {"state": fields["state"].upper()}
        return {"temperature": fields["temperature"], "humidity": fields["humidity"]}

    def state_report(self, state: dict[str, Any], now: datetime) -> list[Message]:
        return [Message(self._topic, as_json({**self._state(state), "linkquality": 120}))]

    def command_filters(self) -> list[str]:
        return [f"{self._topic}/set"] if is_relay(self.device) else []

    def command(self, message: Message) -> Change:
        try:
            body = json.loads(message.payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"zigbee2mqtt set for {self.native}: not JSON ({exc})") from None
        wanted = body.get("state") if isinstance(body, dict) else None
        if not isinstance(wanted, str) or wanted.upper() not in ("ON", "OFF", "TOGGLE"):
            raise InvalidInput(f"zigbee2mqtt set for {self.native}: state must be ON, OFF or TOGGLE, got {wanted!r}")
        if wanted.upper() == "TOGGLE":
            return Change(state="off" if self.device.state()["state"] == "on" else "on")
        return Change(state=wanted.lower())

    @classmethod
    def client_announcements(cls, speakers: list[Speaker]) -> list[Message]:
        devices = [_bridge_entry(speaker) for speaker in speakers]
        return [Message(f"{BASE}/bridge/devices", as_json(devices), retain=True)]


def _bridge_entry(speaker: Speaker) -> dict[str, Any]:
    model, vendor, description, power_source, exposes = MODELS[speaker.device.spec.kind]
    digest = hashlib.sha256(speaker.native.encode()).hexdigest()
    return {
        "ieee_address": f"0x{digest[:16]}", "type": "EndDevice" if power_source == "Battery" else "Router",
        "network_address": int(digest[16:20], 16), "supported": True, "disabled": False,
        "friendly_name": speaker.native, "power_source": power_source,
        "interview_completed": True, "interviewing": False,
        "definition": {"model": model, "vendor": vendor, "description": description, "exposes": exposes,
                       "options": [], "supports_ota": False},
    }
