"""One module per reactor, each with `build(settings) -> Reactor`; each runs as its own process
with `choreo reactor NAME`."""
from __future__ import annotations

from collections.abc import Callable

from gateway.reactor import Reactor
from gateway.settings import Settings

from . import anomaly, availability, climate, door, energy, threshold

REACTORS: dict[str, Callable[[Settings], Reactor]] = {
    "threshold": threshold.build,
    "availability": availability.build,
    "climate": climate.build,
    "door": door.build,
    "energy": energy.build,
    "anomaly": anomaly.build,
}
