"""Each key's state (by default the event's subject), and the journal that undoes a failed handler."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class KeyedStates:
    """The state model of every key; keys touched since the last checkpoint are written there."""

    def __init__(self, model: type[BaseModel], stored: dict[str, Any]) -> None:
        self.model = model
        self.states: dict[str, BaseModel] = {key: model.model_validate(value) for key, value in stored.items()}
        self._touched: set[str] = set()
        self._undo: dict[str, str | None] | None = None  # key -> JSON before the handler, while one runs

    def __getitem__(self, key: str) -> Any:
        return self.states[key]

    def __contains__(self, key: object) -> bool:
        return key in self.states

    def get(self, key: str) -> Any:
        """The mutable state of `key`, created empty on first use."""
        state = self.states.get(key)
        if self._undo is not None and key not in self._undo:
            # a JSON snapshot: much cheaper than a deep copy, and only parsed back if the handler raises
            self._undo[key] = state.model_dump_json() if state is not None else None
        if state is None:
            state = self.states[key] = self.model()
        self._touched.add(key)
        return state

    def begin(self) -> None:
        self._undo = {}

    def end(self) -> None:
        self._undo = None

    def roll_back(self) -> None:
        undo, self._undo = self._undo or {}, None
        for key, state in undo.items():
            if state is None:
                self.states.pop(key, None)
            else:
                self.states[key] = self.model.model_validate_json(state)

    def changes(self) -> dict[str, str]:
        """The touched keys' states as JSON, for the checkpoint; forgets them."""
        touched, self._touched = self._touched, set()
        return {key: self.states[key].model_dump_json() for key in touched if key in self.states}
