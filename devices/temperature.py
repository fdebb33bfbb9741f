"""Temperature and humidity sensor: a daily cycle, sensor noise, slow drift and rare spikes."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .base import SimulatedDevice


class TemperatureParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    base: float = 22.0  # Cel, the day's mean
    swing: float = Field(default=3.0, ge=0)  # Cel, half the day's range
    noise: float = Field(default=0.05, ge=0)  # Cel, standard deviation per reading
    drift: float = Field(default=0.01, ge=0)  # Cel per reading, random walk
    spike_probability: float = Field(default=0.001, ge=0, le=1)
    spike: float = 8.0  # Cel added by a spike
    humidity: float = Field(default=45.0, ge=0, le=100)  # %RH mean, falling as it warms


class TemperatureSensor(SimulatedDevice):
    kind = "temperature"
    Params = TemperatureParams
    battery_powered = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.offset = 0.0
        self.phase_shift = self.rng.uniform(-0.05, 0.05) * self.day_length  # rooms do not peak together

    def sample(self, elapsed: float) -> dict[str, float]:
        p = self.params
        self.offset += self.rng.gauss(0, p.drift)
        cycle = self.day_phase(elapsed + self.phase_shift)
        temperature = p.base + p.swing * cycle + self.offset + self.rng.gauss(0, p.noise)
        if self.rng.random() < p.spike_probability:
            temperature += p.spike
        humidity = min(100.0, max(0.0, p.humidity - 8 * cycle + self.rng.gauss(0, 0.5)))
        return {"temperature": round(temperature, 2), "humidity": round(humidity, 1)}
