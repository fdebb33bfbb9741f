"""What a handler may use: settings, the state of its key, timers, and the current (event) time."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .keyed import KeyedStates
from .registry import Reactor
from .timers import Timer, Timers


class Context:
    def __init__(self, reactor: Reactor, states: KeyedStates, timers: Timers, key: str, now: datetime,
                 cause: tuple[str, str]) -> None:
        self._reactor = reactor
        self._states = states
        self._timers = timers
        self.key = key
        self.now = now
        self._cause = cause

    @property
    def settings(self) -> Any:
        return self._reactor.settings

    @property
    def state(self) -> Any:
        """The mutable state of this key (by default the event's subject)."""
        return self._states.get(self.key)

    def state_of(self, key: str) -> Any:
        return self._states.get(key)

    def start_timer(self, name: str, seconds: float, key: str | None = None) -> None:
        """(Re)start a timer that calls the reactor's timer handler `name` after `seconds` (event time)."""
        if name not in self._reactor.timer_handlers:
            raise ValueError(f"{self._reactor.name} has no timer handler {name!r}")
        self._timers.set((key or self.key, name), Timer(self.now + timedelta(seconds=seconds), self._cause))

    def cancel_timer(self, name: str, key: str | None = None) -> None:
        self._timers.set((key or self.key, name), None)

    def timer_running(self, name: str, key: str | None = None) -> bool:
        return (key or self.key, name) in self._timers.running
