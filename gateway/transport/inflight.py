"""The client's side of the session: QoS 1 publishes sent and not yet acknowledged (MQTT 5, 4.4)."""
from __future__ import annotations

import asyncio

from .base import Message
from .packets import resent

Entry = tuple[bytes, Message, asyncio.Future[None]]  # the PUBLISH as sent, its message, its confirmation


class Inflight:
    """Unacknowledged publishes by packet id, in the order they were sent.

    After a reconnect whose session the broker kept, they are sent again as they were, with the
    DUP flag; when the session is lost, the broker has forgotten them and they are handed back
    to be published anew, with new packet ids.
    """

    def __init__(self) -> None:
        self.entries: dict[int, Entry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, mid: object) -> bool:
        return mid in self.entries

    def add(self, mid: int, packet: bytes, message: Message, future: asyncio.Future[None]) -> None:
        self.entries[mid] = (packet, message, future)

    def settle(self, mid: int) -> Entry | None:
        """The entry the broker has just answered, now forgotten; None for an unknown packet id."""
        return self.entries.pop(mid, None)

    def again(self) -> bytes:
        """Every unacknowledged PUBLISH as it must be sent again on a kept session, in order."""
        return b"".join(resent(packet) for packet, _, _ in self.entries.values())

    def forget(self) -> list[tuple[Message, asyncio.Future[None]]]:
        """The messages of a lost session, in order, to publish anew."""
        orphans = [(message, future) for _, message, future in self.entries.values()]
        self.entries.clear()
        return orphans

    def futures(self) -> list[asyncio.Future[None]]:
        return [future for _, _, future in self.entries.values()]
