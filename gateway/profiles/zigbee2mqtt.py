"""Zigbee2MQTT: one bridge client publishes for every Zigbee device it has paired.

From https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html:
- `zigbee2mqtt/FRIENDLY_NAME`: the device's state as flat JSON, e.g. `{"temperature": 27.34,
  "humidity": 44.72}` (Xiaomi WSDCGQ01LM), `{"occupancy": true}` (RTCGQ01LM), `{"state": "ON",
  "brightness": 215, "color_temp": 325}` (IKEA LED1545G12);
- `zigbee2mqtt/FRIENDLY_NAME/availability`: `{"state":"online"}` / `{"state":"offline"}` (older
  releases: the bare words `online` / `offline`);
- `zigbee2mqtt/FRIENDLY_NAME/set`: commands, e.g. `{"state": "ON"}`;
- `zigbee2mqtt/bridge/devices` (retained): every paired device with its `friendly_name` and `definition`;
- `zigbee2mqtt/bridge/state` (retained): `{"state":"online"}`, and `{"state":"offline"}` as the bridge's last
  will (https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html#zigbee2mqtt-bridge-state):
  with the bridge gone, none of its devices can be heard.
Units are those of the properties' exposes (https://www.zigbee2mqtt.io/guide/usage/exposes.html):
temperature °C, humidity %, battery %, co2 ppm, power W, energy kWh, pressure hPa,
illuminance lx; `contact` is true while a door is closed.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..events import ActuationRequestedV1, Measurement
from .base import Memory, Profile, Report, as_json, wanted_on
from .units import measurement

BASE = "zigbee2mqtt"
BRIDGE = "bridge"  # zigbee2mqtt/bridge/...: the bridge's own topics, not a device's
# property -> (metric, unit)
PROPERTIES: dict[str, tuple[str, str]] = {
    "temperature": ("temperature", "°C"), "humidity": ("humidity", "%"), "battery": ("battery", "%"),
    "co2": ("co2", "ppm"), "power": ("power", "W"), "energy": ("energy", "kWh"),
    "pressure": ("pressure", "hPa"), "illuminance": ("illuminance", "lx"), "illuminance_lux": ("illuminance", "lx"),
}
BRIDGE_DEVICES_LIMIT = 4 * 1024 * 1024  # the retained list of every paired device, with their exposes
AVAILABILITY = {"online": True, "offline": False}
SWITCH_STATES = {"ON": "on", "OFF": "off"}


class Zigbee2Mqtt(Profile):
    name = "zigbee2mqtt"
    subscriptions = (f"{BASE}/+", f"{BASE}/+/availability", f"{BASE}/{BRIDGE}/devices", f"{BASE}/{BRIDGE}/state")
    # The account `zigbee2mqtt` is the bridge (DeviceSpec.account): it alone writes under zigbee2mqtt/.
    acl = ("user zigbee2mqtt", f"topic write {BASE}/#", f"topic read {BASE}/+/set", f"topic read {BASE}/+/get",
           f"topic read {BASE}/{BRIDGE}/request/#", "topic write homeassistant/#", "topic read homeassistant/status")

    def device_key(self, topic: str) -> str | None:
        first, _, rest = topic.partition("/")
        if first != BASE or not rest:
            return None
        return rest.partition("/")[0] or None

    def decode(self, topic: str, payload: bytes, now: datetime, memory: Memory) -> list[Report]:
        levels = topic.split("/")
        if levels[1] == BRIDGE:
            if topic == f"{BASE}/{BRIDGE}/state":
                return self._bridge_state(payload)
            return self._bridge_devices(payload) if topic == f"{BASE}/{BRIDGE}/devices" else []
        if len(levels) == 3:
            return [self._availability(levels[1], payload)]
        return [self._state(levels[1], payload)]

    def _availability(self, name: str, payload: bytes) -> Report:
        word: object = payload.strip().decode("utf-8", "replace")
        if payload.strip().startswith(b"{"):
            word = self.json_object(payload).get("state")
        return Report(name, online=self.choice(word, AVAILABILITY, "state", "availability must be online or offline"))

    def _bridge_state(self, payload: bytes) -> list[Report]:
        """The bridge offline: every device it serves is offline. Back online, each device's own
        availability (or its next message) says it is there again, so that is no report of its own."""
        if not payload:
            return []  # a cleared retained state
        bridge = self._availability(BRIDGE, payload)
        return [] if bridge.online else [Report(BRIDGE, online=False, every_device=True)]

    def _state(self, name: str, payload: bytes) -> Report:
        document = self.json_object(payload)
        measurements, kept_out = [], []
        state = None
        for key, value in document.items():
            if key in PROPERTIES:
                metric, unit = PROPERTIES[key]
                found = measurement(metric, unit, self.number(value, key))
                assert found is not None  # every PROPERTIES unit fits its metric
                measurements.append(found)
            elif key == "occupancy":
                measurements.append(self._boolean("motion", value, key, when_true=1.0))
            elif key == "contact":
                measurements.append(self._boolean("door_open", value, key, when_true=0.0))
            elif key == "state":
                state = self.choice(value, SWITCH_STATES, key, "must be ON or OFF")
            else:
                kept_out.append(key)
        return Report(name, measurements=tuple(measurements), state=state, kept_out=tuple(kept_out))

    def _boolean(self, metric: str, value: Any, key: str, when_true: float) -> Measurement:
        if not isinstance(value, bool):
            raise self.bad(key, f"must be true or false, got {type(value).__name__}")
        found = measurement(metric, "", when_true if value else 1.0 - when_true)
        assert found is not None
        return found

    def _bridge_devices(self, payload: bytes) -> list[Report]:
        if not payload:
            return []
        devices = parse_list(self, payload)
        reports = []
        for index, entry in enumerate(devices):
            entry = self.table(entry, f"[{index}]")
            name = entry.get("friendly_name")
            if not isinstance(name, str) or not name:
                raise self.bad(f"[{index}].friendly_name", "must be a non-empty string")
            if entry.get("type") == "Coordinator":
                continue
            definition = entry.get("definition")
            definition = definition if isinstance(definition, dict) else {}
            what = " ".join(str(definition.get(key, "")) for key in ("vendor", "model", "description")).strip()
            reports.append(Report(name, announced=f"{what or 'a Zigbee device'} ({entry.get('ieee_address', '?')})"))
        return reports

    def command(self, native: str, request: ActuationRequestedV1) -> list[tuple[str, bytes]]:
        state = "ON" if wanted_on(request, self.name) else "OFF"
        return [(f"{BASE}/{native}/set", as_json({"state": state}))]


def parse_list(profile: Profile, payload: bytes) -> list:
    """bridge/devices is a JSON array, which the object parser refuses: wrap it to reuse its limits."""
    wrapped = profile.json_object(b'{"list":' + payload + b"}", limit=BRIDGE_DEVICES_LIMIT)
    devices = wrapped["list"]
    if not isinstance(devices, list):
        raise profile.bad("bridge/devices", f"must be a JSON array, got {type(devices).__name__}")
    return devices
