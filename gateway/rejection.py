"""`event.rejected.v1`: how every service says it could not take an input, counted and logged."""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from .events import Event, EventRejectedV1, new_event
from .transport import Message

log = logging.getLogger(__name__)

UNKNOWN_SUBJECT = "unknown"


class Rejections:
    """Builds one service's rejection facts, numbered in that service's own `sequence`."""

    def __init__(self, source: str, counts: Counter[str], next_sequence: Callable[[], int]) -> None:
        self.source = source
        self.counts = counts
        self.next_sequence = next_sequence

    def of(self, message: Message, reason: str, subject: str = UNKNOWN_SUBJECT, *,
           time: datetime | None = None, event_id: str | None = None) -> Event[EventRejectedV1]:
        """The fact that `message` was rejected for `reason`, with a bounded excerpt of it."""
        self.counts["rejected"] += 1
        log.info("%s rejected %s: %s", self.source, message.topic[:128], reason)
        data = EventRejectedV1.of(reason=reason, rejected_by=self.source, topic=message.topic, payload=message.payload)
        return new_event(data, source=self.source, subject=subject, time=time, sequence=self.next_sequence(),
                         event_id=event_id)
