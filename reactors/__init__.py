"""One module per reactor; each runs as its own process with `choreo reactor NAME`."""
from __future__ import annotations

from collections.abc import Callable

from gateway.reactor import Reactor
from gateway.settings import Settings

from .threshold import ThresholdReactor

REACTORS: dict[str, Callable[[Settings], Reactor]] = {
    "threshold": lambda settings: ThresholdReactor(settings.threshold),
}
