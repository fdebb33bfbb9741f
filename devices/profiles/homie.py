"""Homie 5: one topic per property, the device described once in a retained JSON document.

From the Homie convention 5.0 (https://homieiot.github.io/specification/spec-core-v5_0_0/):
- `homie/5/DEVICE/$state`: `init`, `ready`, `disconnected` (before a clean disconnect),
  `sleeping`, `lost` (the last will); retained;
- `homie/5/DEVICE/$description`: retained JSON `{"homie": "5.0", "version": <int>, "name": ...,
  "nodes": {NODE: {"name": ..., "properties": {PROPERTY: {"datatype": "float", "unit": "°C",
  "settable": false, "retained": true, "format": ...}}}}}`; units such as `°C`, `%`, `W`, `kWh`, `ppm`;
- `homie/5/DEVICE/NODE/PROPERTY`: the value as a string (`21.5`, `true`), retained;
- `homie/5/DEVICE/NODE/PROPERTY/set`: commands (non-retained); the device then publishes
  the value it took on the property topic.
Topic ids are lower-case letters, digits and hyphens (gateway/fleet.py checks a Homie `native` name).
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from gateway.errors import InvalidInput
from gateway.transport import Message

from ..base import as_json
from .speaker import Change, Speaker, is_relay


def _float(name: str, unit: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "datatype": "float", "unit": unit, **extra}


def _boolean(name: str, fmt: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "datatype": "boolean", "format": fmt, **extra}


# kind -> node id, node name, {property id: (simulation field, description)}
NODES: dict[str, tuple[str, str, dict[str, tuple[str, dict[str, Any]]]]] = {
    "temperature": ("climate", "Climate", {
        "temperature": ("temperature", _float("Temperature", "°C")),
        "humidity": ("humidity", _float("Relative humidity", "%", format="0:100"))}),
    "co2": ("air", "Air quality", {"co2": ("co2", _float("Carbon dioxide", "ppm"))}),
    "motion": ("motion", "Motion", {"motion": ("motion", _boolean("Motion", "idle,moving"))}),
    "door": ("contact", "Door contact", {"open": ("door_open", _boolean("Open", "closed,open"))}),
    "power": ("meter", "Meter", {"power": ("power", _float("Power", "W")),
                                 "energy": ("energy", _float("Energy", "kWh"))}),
    "fan": ("switch", "Switch", {"state": ("state", _boolean("State", "off,on", settable=True))}),
    "heater": ("switch", "Switch", {"state": ("state", _boolean("State", "off,on", settable=True))}),
    "valve": ("valve", "Valve", {"position": ("position", _float("Position", "%", format="0:100",
                                                                   settable=True))}),
}


class HomieSpeaker(Speaker):
    profile = "homie"
    kinds = frozenset(NODES)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.node, self.node_name, self.properties = NODES[self.device.spec.kind]

    @property
    def _base(self) -> str:
        return f"homie/5/{self.native}"

    def will(self) -> Message:
        return Message(f"{self._base}/$state", b"lost", retain=True)

    def birth(self) -> Message:
        return Message(f"{self._base}/$state", b"ready", retain=True)

    def goodbye(self) -> list[Message]:
        return [Message(f"{self._base}/$state", b"disconnected", retain=True)]

    def description(self) -> dict[str, Any]:
        properties = {prop: schema for prop, (_, schema) in self.properties.items()}
        nodes = {self.node: {"name": self.node_name, "properties": properties}}
        version = int(hashlib.sha256(repr(nodes).encode()).hexdigest()[:8], 16)
        return {"homie": "5.0", "version": version, "name": self.device.id, "nodes": nodes}

    def announcements(self) -> list[Message]:
        return [Message(f"{self._base}/$description", as_json(self.description()), retain=True)]

    def readings(self, fields: dict[str, Any], now: datetime) -> list[Message]:
        if self.device.spec.kind == "power":
            fields = {**fields, "energy": fields["energy"] / 1000}  # Wh -> kWh
        return self._values(fields)

    def _values(self, fields: dict[str, Any]) -> list[Message]:
        return [Message(f"{self._base}/{self.node}/{prop}", _text(fields[field], schema), retain=True)
                for prop, (field, schema) in self.properties.items()]

    def state_report(self, state: dict[str, Any], now: datetime) -> list[Message]:
        return self._values(state)

    def command_filters(self) -> list[str]:
        if not (is_relay(self.device) or self.device.spec.kind == "valve"):
            return []
        return [f"{self._base}/{self.node}/{prop}/set" for prop, (_, schema) in self.properties.items()
                if schema.get("settable")]

    def command(self, message: Message) -> Change:
        text = message.payload.decode("utf-8", "replace")
        if self.device.spec.kind == "valve":
            try:
                position = float(text)
            except ValueError:
                raise InvalidInput(f"homie {self.native}: position must be a number, got {text[:32]!r}") from None
            if not 0 <= position <= 100:
                raise InvalidInput(f"homie {self.native}: position {position} is outside 0:100")
            return Change(position=position)
        if text not in ("true", "false"):
            raise InvalidInput(f"homie {self.native}: a boolean is `true` or `false`, got {text[:32]!r}")
        return Change(state="on" if text == "true" else "off")


def _text(value: Any, schema: dict[str, Any]) -> bytes:
    if schema["datatype"] == "boolean":
        return b"true" if value in (True, 1, "on") else b"false"
    return repr(round(float(value), 6)).encode()
