"""Tasmota: every device its own client, topics `%prefix%/%topic%/` (FullTopic's default).

From https://tasmota.github.io/docs/MQTT/ and https://tasmota.github.io/docs/Commands/:
- `tele/TOPIC/LWT`: `Online` (retained) once connected, `Offline` (retained) as the last will;
- `tele/TOPIC/SENSOR`: readings nested per sensor, with the unit of every temperature in
  `TempUnit`, e.g. `{"Time":"2021-06-13T06:59:52","DHT11":{"Temperature":23.0,"Humidity":37.0,
  "DewPoint":7.5},"TempUnit":"C"}`; an energy monitor's `ENERGY` object carries `Power` (W) and
  `Total`/`Today`/`Yesterday` (kWh);
- `tele/TOPIC/STATE`: the periodic state, `POWER` among it;
- `cmnd/TOPIC/POWER`: `ON`, `OFF`, `TOGGLE` (or `1`, `0`, `2`), an empty payload asks for the state;
- `stat/TOPIC/RESULT` `{"POWER":"ON"}` and `stat/TOPIC/POWER` `ON`: the answer to a command.
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from gateway.errors import InvalidInput
from gateway.transport import Message

from ..base import as_json
from .speaker import Change, Speaker, is_relay, local_time

ONLINE = b"Online"
OFFLINE = b"Offline"
SENSOR = "AM2301"  # the DHT21 temperature and humidity sensor's name in Tasmota's SENSOR message
VOLTAGE = 230.0
POWER_WORDS = {"ON": "on", "1": "on", "OFF": "off", "0": "off", "TOGGLE": "toggle", "2": "toggle"}


class TasmotaSpeaker(Speaker):
    profile = "tasmota"
    kinds = frozenset({"temperature", "power", "fan", "heater"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started: datetime | None = None

    def _topic(self, prefix: str, name: str) -> str:
        return f"{prefix}/{self.native}/{name}"

    def will(self) -> Message:
        return Message(self._topic("tele", "LWT"), OFFLINE, retain=True)

    def birth(self) -> Message:
        return Message(self._topic("tele", "LWT"), ONLINE, retain=True)

    def goodbye(self) -> list[Message]:
        return [self.will()]

    def readings(self, fields: dict[str, Any], now: datetime) -> list[Message]:
        payload: dict[str, Any] = {"Time": local_time(now)}
        if self.device.spec.kind == "power":
            payload["ENERGY"] = _energy(fields)
        else:
            temperature, humidity = fields["temperature"], fields["humidity"]
            payload[SENSOR] = {"Temperature": round(temperature, 1), "Humidity": round(humidity, 1),
                               "DewPoint": _dew_point(temperature, humidity)}
            payload["TempUnit"] = "C"
        return [Message(self._topic("tele", "SENSOR"), as_json(payload))]

    def state_report(self, state: dict[str, Any], now: datetime) -> list[Message]:
        self.started = self.started or now
        uptime = int((now - self.started).total_seconds())
        payload = {"Time": local_time(now), "Uptime": f"{uptime // 86400}T{_clock(uptime % 86400)}",
                   "UptimeSec": uptime, "Heap": 26, "SleepMode": "Dynamic", "Sleep": 50, "LoadAvg": 19,
                   "MqttCount": 1, "POWER": state["state"].upper(),
                   "Wifi": {"AP": 1, "SSId": "choreo", "Channel": 6, "RSSI": 70, "Signal": -65, "LinkCount": 1}}
        return [Message(self._topic("tele", "STATE"), as_json(payload))]

    def command_filters(self) -> list[str]:
        return [self._topic("cmnd", "POWER")] if is_relay(self.device) else []

    def command(self, message: Message) -> Change:
        word = message.payload.decode("utf-8", "replace").strip().upper()
        if not word:
            return Change()  # a query: the answer is the unchanged state
        if word not in POWER_WORDS:
            raise InvalidInput(f"tasmota {self.native}: POWER takes ON, OFF or TOGGLE, got {word[:32]!r}")
        wanted = POWER_WORDS[word]
        if wanted == "toggle":
            wanted = "off" if self.device.state()["state"] == "on" else "on"
        return Change(state=wanted)

    def answer(self, command: Message, before: dict[str, Any], after: dict[str, Any],
               now: datetime) -> list[Message]:
        power = after["state"].upper()
        return [Message(self._topic("stat", "RESULT"), as_json({"POWER": power})),
                Message(self._topic("stat", "POWER"), power.encode())]


def _energy(fields: dict[str, Any]) -> dict[str, Any]:
    power = fields["power"]
    total = round(fields["energy"] / 1000, 3)  # Wh -> kWh
    return {"TotalStartTime": "2026-01-01T00:00:00", "Total": total, "Yesterday": 0.0, "Today": total,
            "Power": round(power), "ApparentPower": round(power), "ReactivePower": 0, "Factor": 1.0,
            "Voltage": round(VOLTAGE), "Current": round(power / VOLTAGE, 3)}


def _dew_point(temperature: float, humidity: float) -> float:
    """Magnus formula, as Tasmota computes DewPoint."""
    gamma = math.log(max(humidity, 0.1) / 100) + 17.62 * temperature / (243.12 + temperature)
    return round(243.12 * gamma / (17.62 - gamma), 1)


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
