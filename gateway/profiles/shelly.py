"""Shelly Gen2 and later: JSON-RPC 2.0 frames over MQTT, the device id as topic prefix.

From https://shelly-api-docs.shelly.cloud/gen2/General/Notifications ("NotifyStatus"),
https://shelly-api-docs.shelly.cloud/gen2/General/RPCChannels (MQTT) and the components' pages
(https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch, .../Temperature, .../Humidity,
.../DevicePower):
- `<id>/events/rpc`: `{"src": <id>, "dst": "<id>/events", "method": "NotifyStatus", "params":
  {"ts": <unix seconds>, "<component>:<n>": {...what changed...}}}`; `temperature:N` has `tC` (and
  `tF`), `humidity:N` `rh` (%), `switch:N` `output`, `apower` (W) and `aenergy.total` (Wh),
  `devicepower:N` `battery.percent`, `illuminance:N` `lux`; `NotifyFullStatus` carries the same;
- `<id>/online`: `true` / `false` (the last will);
- `<id>/rpc`: request frames `{"id": 1, "src": <caller>, "method": "Switch.Set", "params": {"id": 0,
  "on": true}}`; the answer goes to `<caller>/rpc`.
Components we have no metric for (`sys`, `wifi`, `input:0`, ...) are kept out and counted.
"""
from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

from ..events import MAX_CLOCK_AHEAD, ActuationRequestedV1, Measurement
from .base import Memory, Profile, Report, as_json, wanted_on
from .units import measurement

COMPONENT = re.compile(r"[a-z][a-z0-9_]{0,31}(:[0-9]{1,3})?")
NOTIFICATIONS = ("NotifyStatus", "NotifyFullStatus")
ONLINE = {b"true": True, b"false": False}
CALLER_PREFIX = "choreo-"  # the bridge's `src` for device X is `choreo-X`: answers land on choreo-X/rpc
MAX_AGE = timedelta(days=7)


class Shelly(Profile):
    name = "shelly"
    subscriptions = ("+/events/rpc", "+/online")
    acl = ("pattern write %u/events/rpc", "pattern write %u/online", "pattern read %u/rpc",
           f"pattern write {CALLER_PREFIX}%u/rpc")

    def __init__(self) -> None:
        self._request_ids = itertools.count(1)

    def device_key(self, topic: str) -> str | None:
        name, slash, rest = topic.partition("/")
        return name if slash and name and rest in ("events/rpc", "online") else None

    def decode(self, topic: str, payload: bytes, now: datetime, memory: Memory) -> list[Report]:
        name, _, rest = topic.partition("/")
        if rest == "online":
            if payload not in ONLINE:
                raise self.bad("online", f"must be true or false, got {payload[:32]!r}")
            return [Report(name, online=ONLINE[payload])]
        frame = self.json_object(payload)
        if frame.get("method") not in NOTIFICATIONS:
            return []  # NotifyEvent (button pushes, ...): no reading, no state
        params = self.table(frame.get("params"), "params")
        report = Report(name, time=self._time(params.get("ts"), now))
        return [self._components(report, params)]

    def _time(self, ts: object, now: datetime) -> datetime | None:
        """The device clock, unless it is implausible (unset, or a week off): then ingest's own is used."""
        if ts is None:
            return None
        seconds = self.number(ts, "params.ts")
        plausible = (now - MAX_AGE).timestamp() <= seconds <= (now + MAX_CLOCK_AHEAD).timestamp()
        return datetime.fromtimestamp(seconds, UTC) if plausible else None

    def _components(self, report: Report, params: dict) -> Report:
        measurements: dict[str, Measurement] = {}
        kept_out: list[str] = []
        state = None
        for key, status in params.items():
            if key == "ts":
                continue
            if not COMPONENT.fullmatch(key):
                raise self.bad(f"params.{key}", "is not a component (type or type:id)")
            status = self.table(status, f"params.{key}")
            kind, _, number = key.partition(":")
            found = self._component(kind, key, status) if number in ("", "0") else None
            if found is None:
                kept_out.append(key)
                continue
            for item in found[0]:
                measurements.setdefault(item.name, item)
            state = found[1] if found[1] is not None else state
        return Report(report.native, measurements=tuple(measurements.values()), state=state, time=report.time,
                      kept_out=tuple(kept_out))

    def _component(self, kind: str, key: str, status: dict) -> tuple[list[Measurement], str | None] | None:
        if kind == "temperature":
            unit, field = ("°C", "tC") if "tC" in status else ("°F", "tF")
            return self._values(key, status, {field: ("temperature", unit)}), None
        if kind == "humidity":
            return self._values(key, status, {"rh": ("humidity", "%")}), None
        if kind == "illuminance":
            return self._values(key, status, {"lux": ("illuminance", "lx")}), None
        if kind == "devicepower":
            battery = self.table(status.get("battery", {}), f"params.{key}.battery")
            return self._values(f"{key}.battery", battery, {"percent": ("battery", "%")}), None
        if kind == "switch":
            return self._switch(key, status)
        return None

    def _switch(self, key: str, status: dict) -> tuple[list[Measurement], str | None]:
        found = self._values(key, status, {"apower": ("power", "W")})
        if "aenergy" in status:
            energy = self.table(status["aenergy"], f"params.{key}.aenergy")
            found += self._values(f"{key}.aenergy", energy, {"total": ("energy", "Wh")})
        output = status.get("output")
        if output is not None and not isinstance(output, bool):
            raise self.bad(f"params.{key}.output", f"must be true or false, got {type(output).__name__}")
        return found, None if output is None else ("on" if output else "off")

    def _values(self, path: str, status: dict, fields: dict[str, tuple[str, str]]) -> list[Measurement]:
        values = []
        for field, (metric, unit) in fields.items():
            if field in status:
                found = measurement(metric, unit, self.number(status[field], f"params.{path}.{field}"))
                assert found is not None  # every unit above fits its metric
                values.append(found)
        return values

    def command(self, native: str, request: ActuationRequestedV1) -> list[tuple[str, bytes]]:
        frame = {"id": next(self._request_ids), "src": f"{CALLER_PREFIX}{native}", "method": "Switch.Set",
                 "params": {"id": 0, "on": wanted_on(request, self.name)}}
        return [(f"{native}/rpc", as_json(frame))]
