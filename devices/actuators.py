"""Actuators: a relay (fan or heater) and a valve. They act on `actuation.requested.v1` facts
addressed to them and report their new state, naming the request they answered."""
from __future__ import annotations

from typing import Any, Protocol

from gateway.events import ActuationRequestedV1, Event

from .base import SimulatedDevice


class Wanted(Protocol):
    """What is asked of an actuator: an actuation request's data, or a native command's change."""

    @property
    def state(self) -> str | None: ...

    @property
    def position(self) -> float | None: ...


class _Actuator(SimulatedDevice):
    is_actuator = True

    def sample(self, elapsed: float) -> dict[str, Any]:
        return self.state()

    def apply(self, request: Event) -> dict[str, Any] | None:
        data = request.data
        if not isinstance(data, ActuationRequestedV1):
            return None
        before = self.state()
        self.change(data)
        after = self.state()
        if after == before:
            return None
        return {**after, "request": request.id, "correlation": request.correlationid}

    def change(self, data: Wanted) -> None:
        raise NotImplementedError


class Relay(_Actuator):
    """A switched load; the fleet's `fan` and `heater` kinds."""

    kind = "relay"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.on = False

    def state(self) -> dict[str, Any]:
        return {"state": "on" if self.on else "off"}

    def change(self, data: Wanted) -> None:
        if data.state is not None:
            self.on = data.state == "on"


class Valve(_Actuator):
    kind = "valve"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.position = 0.0

    def state(self) -> dict[str, Any]:
        return {"position": self.position}

    def change(self, data: Wanted) -> None:
        if data.position is not None:
            self.position = data.position
        elif data.state is not None:
            self.position = 100.0 if data.state == "on" else 0.0
