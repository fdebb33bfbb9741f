"""The transactional outbox: facts emitted and not yet confirmed by the broker, kept in the checkpoint."""
from __future__ import annotations

import asyncio
import logging
from collections import Counter

from ..errors import Refused
from ..events import Event
from ..service import event_message
from ..transport import Message, Transport

log = logging.getLogger(__name__)

Entry = tuple[str, bytes]  # (topic, payload)


def outbox_key(fact: Event) -> str:
    """A fact emitted in two versions shares one id (gateway/upcast.py): each version is kept on its own."""
    return f"{fact.type}/{fact.id}"


class Outbox:
    """A fact enters with the checkpoint that made it and leaves with the one after its PUBACK,
    so no fact is lost between a checkpoint and the broker's confirmation."""

    def __init__(self, owner: str, transport: Transport, stored: dict[str, Entry], counts: Counter[str]) -> None:
        self.owner = owner
        self.transport = transport
        self.entries: dict[str, Entry] = dict(stored)
        self.counts = counts
        self._changes: dict[str, Entry | None] = {}  # outbox_key -> entry, None: confirmed
        self._confirming: set[str] = set()

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, facts: list[Event]) -> None:
        """Keep and publish each fact."""
        for fact in facts:
            message, key = event_message(fact), outbox_key(fact)
            self.entries[key] = self._changes[key] = (message.topic, message.payload)
            self._publish(key, message)

    def republish(self) -> None:
        """Publish again every fact not yet confirmed by the broker (after a restart)."""
        for fact_id, (topic, payload) in list(self.entries.items()):
            if fact_id not in self._confirming:
                self._publish(fact_id, Message(topic, payload))
                self.counts["republished"] += 1

    def _publish(self, fact_id: str, message: Message) -> None:
        self._confirming.add(fact_id)
        self.transport.publish(message).add_done_callback(lambda future: self._confirmed(fact_id, future))

    def _confirmed(self, fact_id: str, future: asyncio.Future[None]) -> None:
        self._confirming.discard(fact_id)
        if future.cancelled() or future.exception() is not None:
            self.counts["publish_failures"] += 1  # stays in the outbox; published again at the next restart
            if not future.cancelled() and isinstance(future.exception(), Refused):
                log.error("%s keeps fact %s in its outbox and stops: fix the broker's ACL for %s, then restart it",
                          self.owner, fact_id, self.owner)
            return
        if self.entries.pop(fact_id, None) is not None:
            self._changes[fact_id] = None

    def changes(self) -> dict[str, Entry | None]:
        changes, self._changes = self._changes, {}
        return changes
