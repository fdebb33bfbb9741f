"""What every simulated device shares: identity, parameters, sequence counter, battery, clock."""
from __future__ import annotations

import json
import math
import random
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.errors import ConfigError
from gateway.events import Event
from gateway.fleet import DeviceSpec


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulatedDevice:
    """A device kind: subclasses set `kind`, `Params` and `sample()`; actuators also `apply()`."""

    kind: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    battery_powered: ClassVar[bool] = False
    is_actuator: ClassVar[bool] = False

    def __init__(self, spec: DeviceSpec, rng: random.Random, day_length: float) -> None:
        self.spec = spec
        self.rng = rng
        self.day_length = day_length
        self.params = self._validated_params(spec)
        self.sequence = 0
        self.battery = 100.0 if self.battery_powered else None

    @property
    def id(self) -> str:
        return self.spec.id

    def _validated_params(self, spec: DeviceSpec) -> Any:
        try:
            return self.Params.model_validate(spec.params)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            name = ".".join(str(part) for part in first["loc"])
            raise ConfigError(f"device {spec.id} ({spec.kind}): parameter {name}: {first['msg']}") from None

    def day_phase(self, elapsed: float) -> float:
        """Where the simulated day is: it starts at 0 (mid-morning, warming), +1 warmest, -1 coldest."""
        return math.sin(2 * math.pi * elapsed / self.day_length)

    def sample(self, elapsed: float) -> dict[str, Any]:
        """The kind's metrics (or state) now; `elapsed` is seconds since the fleet started."""
        raise NotImplementedError

    def apply(self, request: Event) -> dict[str, Any] | None:
        """An actuator's reaction to an actuation request: its new state, or None if unchanged."""
        return None

    def state(self) -> dict[str, Any]:
        """An actuator's state, which it reports at every connect."""
        raise NotImplementedError

    def change(self, data: Any) -> None:
        """An actuator takes on the `state` or `position` asked of it (by a request or a native command)."""
        raise NotImplementedError

    def telemetry(self, fields: dict[str, Any], now: datetime) -> dict[str, Any]:
        """The next payload: counter, device clock, the given fields and the battery where it applies."""
        self.sequence += 1
        payload: dict[str, Any] = {"seq": self.sequence, "ts": _rfc3339(now)}
        payload.update(fields)
        battery = self.drain_battery()
        if battery is not None:
            payload["battery"] = battery
        return payload

    def drain_battery(self) -> float | None:
        """The battery level (percent) after one more message, or None for a mains-powered device."""
        if self.battery is None:
            return None
        self.battery = max(0.0, self.battery - 0.0005)
        return round(self.battery, 1)


def as_json(value: Any) -> bytes:
    """A payload as compact JSON, as devices send it."""
    return json.dumps(value, separators=(",", ":")).encode()


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
