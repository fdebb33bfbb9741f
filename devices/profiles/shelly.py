"""Shelly Gen2 and later: JSON-RPC 2.0 frames over MQTT, the device id as topic prefix.

From https://shelly-api-docs.shelly.cloud/gen2/General/Notifications,
https://shelly-api-docs.shelly.cloud/gen2/General/RPCProtocol and
https://shelly-api-docs.shelly.cloud/gen2/General/RPCChannels (MQTT):
- `<id>/events/rpc`: notification frames `{"src": <id>, "dst": "<id>/events", "method":
  "NotifyStatus", "params": {"ts": <unix seconds>, "<component>:<n>": {...changed status...}}}`;
  status of `temperature:0` has `tC`/`tF`, `humidity:0` has `rh`, `switch:0` has `output`,
  `apower` (W), `voltage`, `current` and `aenergy.total` (Wh);
- `<id>/online`: `true` once connected, `false` as the last will, both retained;
- `<id>/rpc`: request frames `{"id": 1, "src": "<caller>", "method": "Switch.Set", "params":
  {"id": 0, "on": true}}`; the response `{"id": 1, "src": <id>, "dst": "<caller>", "result":
  {"was_on": false}}` goes to `<caller>/rpc`, an error as `{"error": {"code": ..., "message": ...}}`.
A switch notifies its status only when it changed: its output after a command, its metering
(`voltage`, `current`, `apower`, without `output`) as the mains and the load wander.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway.errors import InvalidInput
from gateway.transport import Message

from ..base import as_json
from .speaker import Change, Speaker, is_relay

LOAD_WATTS = {"fan": 35.0, "heater": 1500.0}
VOLTAGE = 230.0
INVALID_ARGUMENT = -103  # Shelly's error code for a bad parameter
NO_HANDLER = 404


class ShellySpeaker(Speaker):
    profile = "shelly"
    kinds = frozenset({"temperature", "fan", "heater"})
    meters_actuators = True  # a Plus 1PM notifies its metering (voltage, current, apower) as it changes

    def will(self) -> Message:
        return Message(f"{self.native}/online", b"false", retain=True)

    def birth(self) -> Message:
        return Message(f"{self.native}/online", b"true", retain=True)

    def goodbye(self) -> list[Message]:
        return [self.will()]

    def _notify(self, components: dict[str, Any], now: datetime) -> Message:
        frame = {"src": self.native, "dst": f"{self.native}/events", "method": "NotifyStatus",
                 "params": {"ts": round(now.timestamp(), 2), **components}}
        return Message(f"{self.native}/events/rpc", as_json(frame))

    def readings(self, fields: dict[str, Any], now: datetime) -> list[Message]:
        if is_relay(self.device):
            return [self._notify({"switch:0": self._metering(fields["state"] == "on")}, now)]
        celsius = round(fields["temperature"], 1)
        components: dict[str, Any] = {
            "temperature:0": {"id": 0, "tC": celsius, "tF": round(celsius * 9 / 5 + 32, 1)},
            "humidity:0": {"id": 0, "rh": round(fields["humidity"], 1)},
        }
        battery = self.device.drain_battery()
        if battery is not None:
            components["devicepower:0"] = {"id": 0, "battery": {"V": round(3.0 + battery / 100 * 1.2, 2),
                                                                "percent": round(battery)},
                                           "external": {"present": False}}
        return [self._notify(components, now)]

    def state_report(self, state: dict[str, Any], now: datetime) -> list[Message]:
        on = state["state"] == "on"
        switch = {"source": "MQTT", "output": on, **self._metering(on)}
        return [self._notify({"switch:0": switch}, now)]

    def _metering(self, on: bool) -> dict[str, Any]:
        """The metered part of `switch:0`: the mains voltage wanders, the load draws while on."""
        voltage = round(VOLTAGE + self.device.rng.uniform(-2, 2), 1)
        power = round(LOAD_WATTS[self.device.spec.kind] * self.device.rng.uniform(0.97, 1.03), 1) if on else 0.0
        return {"id": 0, "apower": power, "voltage": voltage, "current": round(power / voltage, 3)}

    def command_filters(self) -> list[str]:
        return [f"{self.native}/rpc"] if is_relay(self.device) else []

    def command(self, message: Message) -> Change:
        frame = _request(message.payload)
        method, params = frame.get("method"), frame.get("params") or {}
        if method == "Switch.Toggle":
            return Change(state="off" if self.device.state()["state"] == "on" else "on")
        if method == "Switch.GetStatus":
            return Change()
        if method != "Switch.Set":
            raise InvalidInput(f"shelly {self.native}: no handler for {str(method)[:64]!r}")
        if not isinstance(params, dict) or params.get("id", 0) != 0 or not isinstance(params.get("on"), bool):
            raise InvalidInput(f"shelly {self.native}: Switch.Set needs params {{\"id\": 0, \"on\": true|false}}")
        return Change(state="on" if params["on"] else "off")

    def answer(self, command: Message, before: dict[str, Any], after: dict[str, Any],
               now: datetime) -> list[Message]:
        frame = _request(command.payload)
        replies = [self.response(frame, {"was_on": before["state"] == "on"})]
        if after != before:
            replies += self.state_report(after, now)
        return replies

    def response(self, frame: dict[str, Any], result: dict[str, Any] | None = None,
                 error: tuple[int, str] | None = None) -> Message:
        """The response frame to a request, on the caller's `<src>/rpc`."""
        body: dict[str, Any] = {"id": frame.get("id"), "src": self.native, "dst": frame["src"]}
        if error:
            body["error"] = {"code": error[0], "message": error[1]}
        else:
            body["result"] = result or {}
        return Message(f"{frame['src']}/rpc", as_json(body))

    def refusal(self, command: Message, reason: str) -> list[Message]:
        """The error response to a request it could not obey, if the request said who asked."""
        try:
            frame = _request(command.payload)
        except InvalidInput:
            return []
        code = NO_HANDLER if reason.startswith(f"shelly {self.native}: no handler") else INVALID_ARGUMENT
        return [self.response(frame, error=(code, reason))]


def _request(payload: bytes) -> dict[str, Any]:
    try:
        frame = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"shelly rpc: not JSON ({exc})") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("src"), str) or "/" in frame["src"] or \
            "+" in frame["src"] or "#" in frame["src"] or not frame["src"]:
        raise InvalidInput("shelly rpc: a request frame needs a plain `src` to answer to")
    return frame
