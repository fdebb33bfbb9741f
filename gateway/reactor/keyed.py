"""Each key's state (by default the event's subject), and the journal that undoes a failed handler."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from .journal import Journal


class KeyedStates(Journal[str, str | None]):
    """The state model of every key; keys changed since the last checkpoint are written there.

    Each state is also kept as JSON as it was when the last handler that used it returned. The
    journal takes a handler's "before" from there (much cheaper than a deep copy, and parsed back
    only if the handler raises), the checkpoint writes it, and a handler that leaves a state as it
    found it (most readings change nothing) leaves nothing to write."""

    def __init__(self, model: type[BaseModel], stored: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.states: dict[str, BaseModel] = {key: model.model_validate(value) for key, value in stored.items()}
        # model_dump_json's own serializer, without its per-call work: this runs once per event
        self._serializer = TypeAdapter(model).serializer
        self._json: dict[str, str] = {}  # key -> its state's JSON when the last handler using it returned
        self._changed: set[str] = set()  # keys to write at the next checkpoint

    def __getitem__(self, key: str) -> Any:
        return self.states[key]

    def get(self, key: str) -> Any:
        """The mutable state of `key`, created empty on first use."""
        state = self.states.get(key)
        before = self._before
        if before is None:  # a caller outside any handler may change it in ways no journal sees
            self._json.pop(key, None)
            self._changed.add(key)
        elif key not in before:  # the handler's first use of it
            before[key] = None if state is None else self._json_of(key, state)
        if state is None:
            state = self.states[key] = self.model()
        return state

    def end(self) -> None:
        """After a handler that returned: each state it used is as its JSON now says, changed or not."""
        for key, before in self.noted().items():
            after = self._json[key] = self._dumped(self.states[key])
            if after != before:
                self._changed.add(key)
        super().end()

    def restore(self, key: str, value: str | None) -> None:
        if value is None:
            self.states.pop(key, None)
            self._json.pop(key, None)
        else:
            self.states[key] = self.model.model_validate_json(value)
            self._json[key] = value

    def changes(self) -> dict[str, str]:
        """The changed keys' states as JSON, for the checkpoint; forgets them."""
        changed, self._changed = self._changed, set()
        return {key: self._json_of(key, self.states[key]) for key in changed if key in self.states}

    def _json_of(self, key: str, state: BaseModel) -> str:
        text = self._json.get(key)
        if text is None:  # loaded at the start, or handed to a caller outside any handler since
            text = self._json[key] = self._dumped(state)
        return text

    def _dumped(self, state: BaseModel) -> str:
        return self._serializer.to_json(state).decode()
