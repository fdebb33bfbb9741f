"""Which inputs a reactor handles: each event id once, and (if asked) nothing older than its source's newest."""
from __future__ import annotations

from collections import Counter, OrderedDict

from ..events import Event
from ..sequence import SequenceTracker


class InputFilter:
    """A window of recently handled event ids, and each source's newest `sequence`."""

    def __init__(self, handled: list[str], sources: dict[str, int], window: int, counts: Counter[str]) -> None:
        self.window = window
        self.handled: OrderedDict[str, None] = OrderedDict.fromkeys(handled[-window:])
        self.sequences = SequenceTracker(counts, sources)
        self._new_ids: list[str] = []
        self._new_sources: dict[str, int] = {}

    def first_time(self, event_id: str) -> bool:
        """True once per event id (within the window); the id is remembered."""
        if event_id in self.handled:
            return False
        self.handled[event_id] = None
        self._new_ids.append(event_id)
        if len(self.handled) > self.window:
            self.handled.popitem(last=False)
        return True

    def is_late(self, event: Event) -> bool:
        """True if the event's source has already sent a newer one (or this one again)."""
        if event.sequence is None:
            return False
        if self.sequences.is_new(event.source, event.sequence):
            self._new_sources[event.source] = event.sequence
            return False
        return True

    def changes(self) -> tuple[list[str], dict[str, int]]:
        """The ids handled and the sources' newest sequences since the last checkpoint; forgets them."""
        ids, self._new_ids = self._new_ids, []
        sources, self._new_sources = self._new_sources, {}
        return ids, sources
