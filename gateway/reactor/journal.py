"""The undo journal of a running handler: what it changed, as it was before, put back if it raises."""
from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Journal(Generic[K, V]):
    """Base of the parts a handler changes (keyed state, timers): begin, end, roll back."""

    def __init__(self) -> None:
        self._before: dict[K, V] | None = None  # None: no handler running

    def begin(self) -> None:
        self._before = {}

    def end(self) -> None:
        self._before = None

    def noted(self) -> dict[K, V]:
        """What the running handler changed, as it was before (empty when none runs)."""
        return self._before or {}

    def must_note(self, key: K) -> bool:
        """True on a running handler's first change to `key`: note its value before that change."""
        return self._before is not None and key not in self._before

    def note(self, key: K, before: V) -> None:
        if self._before is not None:
            self._before[key] = before

    def roll_back(self) -> None:
        before, self._before = self._before or {}, None
        for key, value in before.items():
            self.restore(key, value)

    def restore(self, key: K, value: V) -> None:
        raise NotImplementedError
