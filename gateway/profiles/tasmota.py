"""Tasmota: every device its own MQTT client; topics `%prefix%/%topic%/...` (FullTopic's default).

From https://tasmota.github.io/docs/MQTT/ and https://tasmota.github.io/docs/Commands/:
- `tele/TOPIC/SENSOR`: readings nested per sensor, with the unit of every temperature in `TempUnit`
  (and of pressure in `PressureUnit`), e.g. `{"Time":"2019-11-03T19:34:34","AM2301":{"Temperature":31.4,
  "Humidity":35.2,"DewPoint":14.3},"TempUnit":"C"}`; an energy monitor's `ENERGY` object carries
  `Power` (W) and `Total` (kWh);
- `tele/TOPIC/STATE`: the periodic state, the relay's `POWER` (`ON`/`OFF`) among it;
- `tele/TOPIC/LWT`: `Online` (retained) once connected, `Offline` as the last will;
- `cmnd/TOPIC/POWER` with `ON` / `OFF`: the command; `stat/TOPIC/RESULT` `{"POWER":"ON"}`: its answer.
`Time` is the device's local time without an offset, so ingest stamps readings with its own clock.
"""
from __future__ import annotations

from datetime import datetime

from ..events import ActuationRequestedV1, Measurement
from .base import Memory, Profile, Report, wanted_on
from .units import measurement

# sensor field -> (metric, where its unit is: a top-level key, or the unit itself)
FIELDS: dict[str, tuple[str, str]] = {
    "Temperature": ("temperature", "TempUnit"), "Humidity": ("humidity", "%"),
    "CarbonDioxide": ("co2", "ppm"), "eCO2": ("co2", "ppm"), "Pressure": ("pressure", "PressureUnit"),
    "Illuminance": ("illuminance", "lx"), "Power": ("power", "W"), "Total": ("energy", "kWh"),
}
UNIT_KEYS = ("TempUnit", "PressureUnit")
METADATA = {"Time", "SpeedUnit", *UNIT_KEYS}
LWT = {b"Online": True, b"Offline": False}
POWER = {"ON": "on", "OFF": "off"}
STATE_TOPICS = ("STATE", "RESULT")


class Tasmota(Profile):
    name = "tasmota"
    subscriptions = ("tele/+/SENSOR", "tele/+/STATE", "tele/+/LWT", "stat/+/RESULT")
    acl = ("pattern write tele/%u/#", "pattern write stat/%u/#", "pattern read cmnd/%u/#")

    def device_key(self, topic: str) -> str | None:
        prefix, _, rest = topic.partition("/")
        if prefix not in ("tele", "stat"):
            return None
        name, slash, _ = rest.partition("/")
        return name if slash and name else None

    def decode(self, topic: str, payload: bytes, now: datetime, memory: Memory) -> list[Report]:
        _, name, kind = topic.split("/", 2)
        if kind == "LWT":
            if payload not in LWT:
                raise self.bad("LWT", f"must be Online or Offline, got {payload[:32]!r}")
            return [Report(name, online=LWT[payload])]
        document = self.json_object(payload)
        if kind in STATE_TOPICS:
            return self._power(name, document)
        return [self._sensor(name, document)]

    def _power(self, name: str, document: dict) -> list[Report]:
        if "POWER" not in document:
            return []  # a RESULT of another command, or a STATE of a device without a relay
        return [Report(name, state=self.choice(document["POWER"], POWER, "POWER", "must be ON or OFF"))]

    def _sensor(self, name: str, document: dict) -> Report:
        measurements: dict[str, Measurement] = {}
        kept_out: list[str] = []
        for key, value in document.items():
            if key in METADATA:
                continue
            if key in FIELDS:
                raise self.bad(key, "a reading belongs inside its sensor's object, e.g. {\"AM2301\": {...}}")
            if not isinstance(value, dict):
                kept_out.append(key)
                continue
            for field, reading in value.items():
                path = f"{key}.{field}"
                if field not in FIELDS or FIELDS[field][0] in measurements:
                    kept_out.append(path)
                    continue
                metric, unit = FIELDS[field]
                measurements[metric] = self._measurement(metric, self._unit(unit, document, path),
                                                         self.number(reading, path), path)
        return Report(name, measurements=tuple(measurements.values()), kept_out=tuple(kept_out))

    def _unit(self, unit: str, document: dict, path: str) -> str:
        if unit not in UNIT_KEYS:
            return unit
        if unit not in document:
            raise self.bad(unit, f"missing: {path} has no unit without it")
        named = document[unit]
        if not isinstance(named, str):
            raise self.bad(unit, f"must be a string, got {type(named).__name__}")
        return named

    def _measurement(self, metric: str, unit: str, value: float, path: str) -> Measurement:
        found = measurement(metric, unit, value)
        if found is None:
            raise self.bad(path, f"unit {unit[:16]!r} is not one of {metric}'s")
        return found

    def command(self, native: str, request: ActuationRequestedV1) -> list[tuple[str, bytes]]:
        return [(f"cmnd/{native}/POWER", b"ON" if wanted_on(request, self.name) else b"OFF")]
