"""Native metric names and units -> SenML (RFC 8428) names and units.

The project's metric names are those of the simulator's JSON (gateway/ingest/simjson.py). A
percentage is told apart by what it measures: relative humidity is `%RH`, a battery's charge `%EL`.
"""
from __future__ import annotations

from ..events import Measurement
from ..ingest.simjson import FIELD_UNITS

# native unit -> (SenML unit, factor, offset): value * factor + offset
SCALES: dict[str, tuple[str, float, float]] = {
    "°C": ("Cel", 1.0, 0.0), "C": ("Cel", 1.0, 0.0),
    "°F": ("Cel", 5 / 9, -32 * 5 / 9), "F": ("Cel", 5 / 9, -32 * 5 / 9),
    "W": ("W", 1.0, 0.0), "kW": ("W", 1000.0, 0.0),
    "Wh": ("Wh", 1.0, 0.0), "kWh": ("Wh", 1000.0, 0.0),
    "ppm": ("ppm", 1.0, 0.0), "lx": ("lx", 1.0, 0.0),
    "Pa": ("Pa", 1.0, 0.0), "hPa": ("Pa", 100.0, 0.0), "kPa": ("Pa", 1000.0, 0.0),
}
PERCENT_BY_METRIC = {"humidity": "%RH", "battery": "%EL"}
UNITLESS = {"motion", "door_open"}  # 1 or 0, SenML unit "/"


def measurement(metric: str, unit: str, value: float) -> Measurement | None:
    """The SenML measurement of `value` in native `unit`, or None if that unit does not fit `metric`."""
    if metric in UNITLESS:
        return Measurement(name=metric, unit="/", value=value)
    if unit == "%":
        senml = PERCENT_BY_METRIC.get(metric)
        return Measurement(name=metric, unit=senml, value=value) if senml else None
    scale = SCALES.get(unit)
    if scale is None:
        return None
    senml, factor, offset = scale
    if FIELD_UNITS.get(metric) != senml:
        return None
    return Measurement(name=metric, unit=senml, value=round(value * factor + offset, 6))
