"""Facts out of what a reactor's handlers return: the envelope, an id derived from the cause, the sequence."""
from __future__ import annotations

from collections import Counter
from datetime import datetime

from ..events import Event, derived_event_id, new_event
from ..rejection import Rejections
from ..transport import Message
from .registry import Emission, Reactor


class FactMaker:
    """Builds one reactor's facts; a replay of the same causes builds the very same facts.

    A fact's id is derived from its cause and its time is its cause's time (a timer's fact:
    the deadline), so consumers drop the copy a replay publishes.
    """

    def __init__(self, reactor: Reactor, sequence: int, counts: Counter[str]) -> None:
        self.reactor = reactor
        self.source = f"reactor/{reactor.name}"
        self.sequence = sequence  # of the reactor's own facts; checkpointed
        self.counts = counts
        self.rejections = Rejections(self.source, counts, self.next_sequence)
        self._undo: int | None = None

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def make(self, emissions: list[Emission], subject: str, at: datetime, cause: tuple[str, str],
             seed: str) -> list[Event]:
        """The facts of one handler call; refuses a type the reactor did not declare."""
        if not emissions:  # most calls conclude nothing
            return []
        facts = []
        for index, emission in enumerate(emissions):
            about, data = emission if isinstance(emission, tuple) else (subject, emission)
            if data.event_type not in self.reactor.emits and data.event_type not in self.reactor.versions:
                raise TypeError(f"{self.reactor.name} emitted {data.event_type}, which it does not declare")
            event_id = derived_event_id(at, f"{self.reactor.name}|{seed}|{index}".encode())
            sequence = self.next_sequence()
            # one fact in each version it goes out as: the same id and sequence, so consumers of both handle it once
            facts += [new_event(version, source=self.source, subject=about, time=at, sequence=sequence,
                                caused_by=cause, event_id=event_id) for version in self.reactor.outgoing(data)]
        for fact in facts:
            self.counts[f"emitted:{fact.type}"] += 1
        return facts

    def rejected(self, message: Message, reason: str, subject: str, at: datetime) -> Event:
        """The rejection of an input, at `at` (the input's own time when it has one)."""
        key = f"{self.reactor.name}|rejected|{message.topic}".encode() + b"\0" + message.payload
        return self.rejections.of(message, reason, subject, time=at, event_id=derived_event_id(at, key))

    def begin(self) -> None:
        self._undo = self.sequence

    def end(self) -> None:
        self._undo = None

    def roll_back(self) -> None:
        if self._undo is not None:
            self.sequence, self._undo = self._undo, None
