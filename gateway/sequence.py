"""The `sequence` numbers each source counts its messages with, and what their order says."""
from __future__ import annotations

from collections import Counter


class SequenceTracker:
    """The newest `sequence` of each source; counts gaps (lost or still to come), repeats and late arrivals.

    A 1 after a higher number means the source restarted and counts from the start again.
    """

    def __init__(self, counts: Counter[str], newest: dict[str, int] | None = None) -> None:
        self.counts = counts
        self.newest: dict[str, int] = newest if newest is not None else {}

    def is_new(self, source: str, sequence: int) -> bool:
        """True if `sequence` is the newest of `source` so far; False for a repeat or a late arrival."""
        last = self.newest.get(source)
        if last is None or sequence > last or (sequence == 1 and last > 1):
            if last is not None and sequence > last + 1:
                self.counts["sequence_gaps"] += 1
            self.newest[source] = sequence
            return True
        self.counts["sequence_repeats" if sequence == last else "sequence_late"] += 1
        return False
