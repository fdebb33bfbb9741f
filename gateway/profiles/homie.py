"""Homie 5: one topic per property, each device described once in a retained JSON document.

From the Homie convention 5.0 (https://homieiot.github.io/specification/spec-core-v5_0_0/):
- `homie/5/DEVICE/$state`: `init`, `ready`, `disconnected`, `sleeping`, `lost` (the last will);
- `homie/5/DEVICE/$description`: `{"homie": "5.0", "version": 7, "name": ..., "nodes": {NODE:
  {"properties": {PROPERTY: {"datatype": "float", "unit": "°C", "settable": false}}}}}`; the
  "Property Attributes" section lists the recommended units (`°C`, `°F`, `%`, `W`, `kWh`, ...);
- `homie/5/DEVICE/NODE/PROPERTY`: the value as a string (`21.5`, `true`);
- `homie/5/DEVICE/NODE/PROPERTY/set`: commands.
Ingest remembers each device's description to know a property's type and unit; a value that comes
before its description, or names a property it does not describe, is rejected. Properties are mapped
by their id (`temperature`, `humidity`, `open` -> door_open, ...); a relay is expected at
`switch/state` (boolean) and a valve at `valve/position` (percent), which is where commands go.
"""
from __future__ import annotations

import math
from datetime import datetime

from ..events import ActuationRequestedV1
from .base import Memory, Profile, Report
from .units import measurement

BASE = "homie/5"
STATES = {"ready": True, "disconnected": False, "lost": False}  # init and sleeping say neither
METRICS = {"temperature": "temperature", "humidity": "humidity", "co2": "co2", "power": "power",
           "energy": "energy", "battery": "battery", "illuminance": "illuminance", "pressure": "pressure",
           "motion": "motion", "open": "door_open"}
NUMERIC = ("float", "integer")
DESCRIPTION_LIMIT = 256 * 1024


class Homie(Profile):
    name = "homie"
    subscriptions = (f"{BASE}/+/$state", f"{BASE}/+/$description", f"{BASE}/+/+/+")
    documents = (f"{BASE}/+/$description",)
    acl = (f"pattern write {BASE}/%u/#", f"pattern read {BASE}/%u/+/+/set")

    def device_key(self, topic: str) -> str | None:
        if not topic.startswith(f"{BASE}/"):
            return None
        return topic[len(BASE) + 1:].partition("/")[0] or None

    def decode(self, topic: str, payload: bytes, now: datetime, memory: Memory) -> list[Report]:
        levels = topic.split("/")
        device = levels[2]
        if len(levels) == 4:
            return self._attribute(device, levels[3], payload, memory)
        node, prop = levels[3], levels[4]
        if node.startswith("$") or prop.startswith("$") or not payload:
            return []  # a device attribute below a node ($log, ...), or a retained value being cleared
        return [self._value(device, node, prop, payload, memory)]

    def _attribute(self, device: str, attribute: str, payload: bytes, memory: Memory) -> list[Report]:
        if attribute == "$state":
            word = payload.decode("utf-8", "replace")
            return [Report(device, online=STATES[word])] if word in STATES else []
        if attribute != "$description":
            return []
        if not payload:  # the device removed: its retained description cleared
            memory.pop(device, None)
            return []
        description = self.json_object(payload, limit=DESCRIPTION_LIMIT)
        properties = {}
        for node, body in self._by_id(description.get("nodes", {}), "nodes").items():
            for prop, attributes in self._by_id(body.get("properties", {}), f"nodes.{node}.properties").items():
                properties[f"{node}/{prop}"] = (attributes.get("datatype"), attributes.get("unit"))
        memory.remember(device, properties)
        name = description.get("name")
        what = f"{str(name)[:64] if name else device}: {', '.join(sorted(properties))[:400]}"
        return [Report(device, announced=what)]

    def _by_id(self, items: object, field: str) -> dict[str, dict]:
        """Nodes or properties: an object keyed by id (5.0), or a list of objects with an `id` (its drafts)."""
        if isinstance(items, list):
            pairs = [(self.table(item, f"{field}[{n}]").get("id"), item) for n, item in enumerate(items)]
            if any(not isinstance(key, str) for key, _ in pairs):
                raise self.bad(field, "every entry of the list needs a string `id`")
            items = dict(pairs)
        return {str(key): self.table(value, f"{field}.{key}") for key, value in self.table(items, field).items()}

    def _value(self, device: str, node: str, prop: str, payload: bytes, memory: Memory) -> Report:
        path = f"{node}/{prop}"
        properties = memory.get(device)
        if properties is None:
            raise self.bad(path, f"no $description of {device} seen yet, so no datatype or unit")
        if path not in properties:
            raise self.bad(path, f"is not in the $description of {device}")
        datatype, unit = properties[path]
        text = payload.decode("utf-8", "replace")
        if prop == "state" and datatype == "boolean":
            return Report(device, state="on" if self._boolean(text, path) else "off")
        if prop == "position" and datatype in NUMERIC:
            return Report(device, position=self._number(text, path))
        metric = METRICS.get(prop)
        if metric is None:
            return Report(device, kept_out=(path,))
        if datatype == "boolean":
            value = 1.0 if self._boolean(text, path) else 0.0
            found = measurement(metric, "", value)
        else:
            if not isinstance(unit, str) or not unit:
                raise self.bad(f"{path}.unit", "missing in the $description: the value has no unit")
            found = measurement(metric, unit, self._number(text, path))
            if found is None:
                raise self.bad(f"{path}.unit", f"{unit[:16]!r} is not a unit of {metric}")
        if found is None:
            raise self.bad(path, f"a {datatype} cannot be {metric}")
        return Report(device, measurements=(found,))

    def _boolean(self, text: str, path: str) -> bool:
        if text not in ("true", "false"):
            raise self.bad(path, f"a boolean is true or false, got {text[:32]!r}")
        return text == "true"

    def _number(self, text: str, path: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise self.bad(path, f"must be a number, got {text[:32]!r}") from None
        if not math.isfinite(value):
            raise self.bad(path, "is not a finite number")
        return value

    def command(self, native: str, request: ActuationRequestedV1) -> list[tuple[str, bytes]]:
        if request.position is not None:
            return [(f"{BASE}/{native}/valve/position/set", repr(float(request.position)).encode())]
        return [(f"{BASE}/{native}/switch/state/set", b"true" if request.state == "on" else b"false")]
