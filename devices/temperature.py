"""A temperature sensor: a slow cycle around a base temperature, sensor noise, a draining battery."""
from __future__ import annotations

import math
import random
from datetime import datetime


class TemperatureSensor:
    kind = "temperature"

    def __init__(self, device_id: str, rng: random.Random, *, base: float, swing: float, period: float, phase: float) -> None:
        self.device_id = device_id
        self.rng = rng
        self.base = base
        self.swing = swing
        self.period = period
        self.phase = phase
        self.sequence = 0
        self.battery = 100.0

    def reading(self, elapsed: float, now: datetime) -> dict:
        """The next native payload: `elapsed` seconds since the simulation started."""
        self.sequence += 1
        self.battery = max(0.0, self.battery - 0.001)
        cycle = math.sin(2 * math.pi * elapsed / self.period + self.phase)
        temperature = self.base + self.swing * cycle + self.rng.gauss(0, 0.05)
        return {
            "seq": self.sequence,
            "ts": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "temperature": round(temperature, 2),
            "battery": round(self.battery, 1),
        }
