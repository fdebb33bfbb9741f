"""Timers on event time: started and cancelled by handlers, run out by the runner, kept in the checkpoint."""
from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from .journal import Journal

TimerKey = tuple[str, str]  # (state key, timer name)


@dataclass
class Timer:
    deadline: datetime
    cause: tuple[str, str]  # (causation id, correlation id) of the event that started it


class Timers(Journal[TimerKey, Timer | None]):
    """The running timers, a heap of their deadlines, and the journal that undoes a failed handler."""

    def __init__(self, stored: Iterable[tuple[str, str, str, tuple[str, str]]] = ()) -> None:
        super().__init__()
        self.running: dict[TimerKey, Timer] = {}
        self._heap: list[tuple[datetime, str, str]] = []  # entries of cancelled or restarted timers go stale
        self._changes: dict[TimerKey, tuple[str, str] | None] = {}  # -> (deadline, cause JSON), None: deleted
        for key, name, deadline, cause in stored:
            self._put((key, name), Timer(datetime.fromisoformat(deadline), cause))

    def set(self, key: TimerKey, timer: Timer | None) -> None:
        """Start or restart the timer `key`; None cancels it."""
        if self.must_note(key):
            self.note(key, self.running.get(key))
        self._put(key, timer)
        self._changes[key] = None if timer is None else (timer.deadline.isoformat(), json.dumps(list(timer.cause)))

    def _put(self, key: TimerKey, timer: Timer | None) -> None:
        if timer is None:
            self.running.pop(key, None)
            return
        self.running[key] = timer
        heapq.heappush(self._heap, (timer.deadline, *key))

    def next_deadline(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def due(self, now: datetime) -> Iterator[tuple[TimerKey, Timer]]:
        """Each timer whose deadline is at or before `now`, earliest first, stopped as it is handed out."""
        while self._heap and self._heap[0][0] <= now:
            deadline, key, name = heapq.heappop(self._heap)
            timer = self.running.get((key, name))
            if timer is None or timer.deadline != deadline:
                continue  # cancelled or restarted since
            self.set((key, name), None)
            yield (key, name), timer

    def restore(self, key: TimerKey, value: Timer | None) -> None:
        self.set(key, value)

    def changes(self) -> dict[TimerKey, tuple[str, str] | None]:
        changes, self._changes = self._changes, {}
        return changes
