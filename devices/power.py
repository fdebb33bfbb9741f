"""Power meter: base load plus appliances switching on and off; energy is the running integral."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .base import SimulatedDevice


class PowerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    base_load: float = Field(default=120.0, ge=0)  # W, always on
    appliances: int = Field(default=3, ge=0)
    appliance_power: float = Field(default=800.0, ge=0)  # W each
    switch_probability: float = Field(default=0.05, ge=0, le=1)  # per appliance per reading


class PowerMeter(SimulatedDevice):
    kind = "power"
    Params = PowerParams

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.running = [False] * self.params.appliances
        self.energy = 0.0  # Wh since the meter started
        self.last_elapsed: float | None = None

    def sample(self, elapsed: float) -> dict[str, float]:
        p = self.params
        self.running = [on != (self.rng.random() < p.switch_probability) for on in self.running]
        power = p.base_load + p.appliance_power * sum(self.running) + self.rng.gauss(0, 2)
        power = max(0.0, power)
        if self.last_elapsed is not None:
            self.energy += power * (elapsed - self.last_elapsed) / 3600
        self.last_elapsed = elapsed
        return {"power": round(power, 1), "energy": round(self.energy, 3)}
