"""One module per reactor; each runs as its own process with `choreo reactor NAME`."""
from __future__ import annotations

from collections.abc import Callable

from gateway.errors import ConfigError
from gateway.fleet import Registry
from gateway.reactor import Reactor
from gateway.settings import Settings, load_fleet

from .climate import ClimateReactor
from .threshold import ThresholdReactor


def _climate(settings: Settings) -> ClimateReactor:
    if not settings.fleet.file:
        raise ConfigError("the climate reactor needs fleet.file (CHOREO_FLEET_FILE) to know each room's actuators")
    return ClimateReactor(settings.climate, Registry(load_fleet(settings)))


REACTORS: dict[str, Callable[[Settings], Reactor]] = {
    "threshold": lambda settings: ThresholdReactor(settings.threshold),
    "climate": _climate,
}
