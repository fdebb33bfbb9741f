"""Door contact: opens now and then, usually closes again soon."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .base import SimulatedDevice


class DoorParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    open_probability: float = Field(default=0.02, ge=0, le=1)  # per reading, while closed
    close_probability: float = Field(default=0.3, ge=0, le=1)  # per reading, while open


class DoorContact(SimulatedDevice):
    kind = "door"
    Params = DoorParams
    battery_powered = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.open = False

    def sample(self, elapsed: float) -> dict[str, int]:
        chance = self.params.close_probability if self.open else self.params.open_probability
        if self.rng.random() < chance:
            self.open = not self.open
        return {"door_open": 1 if self.open else 0}
