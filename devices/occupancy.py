"""Occupancy-driven sensors: people come and go by a Markov chain; CO2 and motion follow them."""
from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

from .base import SimulatedDevice


class OccupancyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    capacity: int = Field(default=6, ge=1)
    arrive: float = Field(default=0.05, ge=0, le=1)  # chance per reading that someone arrives
    leave: float = Field(default=0.05, ge=0, le=1)  # chance per reading that someone leaves
    ambient_co2: float = Field(default=420.0, ge=0)  # ppm outdoors
    co2_per_person: float = Field(default=350.0, ge=0)  # ppm the room settles at per person
    ventilation: float = Field(default=0.1, gt=0, le=1)  # fraction of the gap closed per reading


class Occupancy:
    def __init__(self, params: OccupancyParams, rng: random.Random) -> None:
        self.params = params
        self.rng = rng
        self.people = 0

    def step(self) -> int:
        if self.people < self.params.capacity and self.rng.random() < self.params.arrive:
            self.people += 1
        if self.people > 0 and self.rng.random() < self.params.leave:
            self.people -= 1
        return self.people


class Co2Sensor(SimulatedDevice):
    kind = "co2"
    Params = OccupancyParams

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.occupancy = Occupancy(self.params, self.rng)
        self.co2 = self.params.ambient_co2

    def sample(self, elapsed: float) -> dict[str, float]:
        p = self.params
        target = p.ambient_co2 + p.co2_per_person * self.occupancy.step()
        self.co2 += (target - self.co2) * p.ventilation + self.rng.gauss(0, 3)
        return {"co2": round(max(0.0, self.co2))}


class MotionSensor(SimulatedDevice):
    """A PIR sensor: 1 while it sees movement, which happens mostly when someone is there."""

    kind = "motion"
    Params = OccupancyParams
    battery_powered = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.occupancy = Occupancy(self.params, self.rng)

    def sample(self, elapsed: float) -> dict[str, float]:
        moving = self.occupancy.step() > 0 and self.rng.random() < 0.7
        return {"motion": 1 if moving else 0}
