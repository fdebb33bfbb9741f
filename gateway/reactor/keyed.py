"""Each key's state (by default the event's subject), and the journal that undoes a failed handler."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .journal import Journal


class KeyedStates(Journal[str, str | None]):
    """The state model of every key; keys touched since the last checkpoint are written there.

    The journal keeps a touched key's state as JSON (None: it had none): much cheaper than
    a deep copy, and parsed back only if the handler raises."""

    def __init__(self, model: type[BaseModel], stored: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.states: dict[str, BaseModel] = {key: model.model_validate(value) for key, value in stored.items()}
        self._touched: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        return self.states[key]

    def get(self, key: str) -> Any:
        """The mutable state of `key`, created empty on first use."""
        state = self.states.get(key)
        if self.must_note(key):
            self.note(key, state.model_dump_json() if state is not None else None)
        if state is None:
            state = self.states[key] = self.model()
        self._touched.add(key)
        return state

    def restore(self, key: str, value: str | None) -> None:
        if value is None:
            self.states.pop(key, None)
        else:
            self.states[key] = self.model.model_validate_json(value)

    def changes(self) -> dict[str, str]:
        """The touched keys' states as JSON, for the checkpoint; forgets them."""
        touched, self._touched = self._touched, set()
        return {key: self.states[key].model_dump_json() for key in touched if key in self.states}
