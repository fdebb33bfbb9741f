"""The client's side of the session: QoS 1 publishes sent and not yet acknowledged (MQTT 5, 4.4)."""
from __future__ import annotations

import asyncio

from .base import Message
from .packets import resent

Entry = tuple[bytes, Message, asyncio.Future[None]]  # the PUBLISH as sent, its message, its confirmation


class Inflight:
    """Unacknowledged publishes by packet id, in the order they were sent (`entries`, which the
    transport fills and empties itself on the per-message path, without a call).

    After a reconnect whose session the broker kept, they are sent again as they were, with the
    DUP flag; when the session is lost, the broker has forgotten them and they are handed back
    to be published anew, with new packet ids.
    """

    def __init__(self) -> None:
        self.entries: dict[int, Entry] = {}

    def __len__(self) -> int:
        return len(self.entries)

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
