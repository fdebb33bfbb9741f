"""One device of the running fleet: its simulation, convention, faults, schedule and MQTT client."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from gateway.transport import Transport

from .base import SimulatedDevice
from .faults import FaultInjector
from .profiles import Speaker


@dataclass
class Member:
    device: SimulatedDevice
    faults: FaultInjector
    schedule: random.Random
    speaker: Speaker | None = None  # None: the simulator's own JSON on devices/{id}/...
    due: float = 0.0  # seconds after the fleet started
    _transport: Transport | None = field(default=None, init=False, repr=False)

    @property
    def transport(self) -> Transport:
        """Its MQTT client (shared by Zigbee2MQTT devices), attached by a FleetRunner before connecting."""
        if self._transport is None:
            raise RuntimeError(f"device {self.device.id} has no transport outside a FleetRunner")
        return self._transport

    def attach(self, transport: Transport) -> None:
        self._transport = transport
