"""The device kinds a fleet file may name, and the simulator class of each."""
from __future__ import annotations

from .actuators import Relay, Valve
from .base import SimulatedDevice
from .door import DoorContact
from .occupancy import Co2Sensor, MotionSensor
from .power import PowerMeter
from .temperature import TemperatureSensor

KINDS: dict[str, type[SimulatedDevice]] = {
    "temperature": TemperatureSensor,
    "co2": Co2Sensor,
    "motion": MotionSensor,
    "door": DoorContact,
    "power": PowerMeter,
    "fan": Relay,
    "heater": Relay,
    "valve": Valve,
}
