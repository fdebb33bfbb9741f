"""Deliveries held until the document they need comes: a Homie value before its device's `$description`.

After a restart that kept ingest's session, the broker hands over what it queued while ingest was
down as soon as ingest connects, before ingest has subscribed again and been sent the retained
descriptions. Rather than refusing those values, ingest holds them, unacknowledged and in order,
and handles them once their device's description has come; if it has not come within `patience`
seconds of the first of them, they are refused as before. Being unacknowledged, they come again if
ingest stops meanwhile.
"""
from __future__ import annotations

import time
from collections import Counter, deque

from ..transport import Delivery

HELD_LIMIT = 500  # half the default receive maximum (1,000): what is held leaves room for the stream
PATIENCE = 5.0  # seconds


class AwaitingDocuments:
    def __init__(self, counts: Counter[str], limit: int = HELD_LIMIT, patience: float = PATIENCE) -> None:
        self.counts = counts
        self.limit = limit
        self.patience = patience
        self._held: dict[str, deque[tuple[float, Delivery]]] = {}  # device -> (since, delivery), in order
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def hold(self, device: str, delivery: Delivery, since: float | None = None) -> bool:
        """Hold `delivery` behind the device's others, waiting `since` (a monotonic time; now if None);
        False, holding nothing, once `limit` are held."""
        if self._size >= self.limit:
            return False
        if since is None:
            since = time.monotonic()
            self.counts["awaiting_document"] += 1
        self._held.setdefault(device, deque()).append((since, delivery))
        self._size += 1
        return True

    def take(self, device: str) -> list[tuple[float, Delivery]]:
        """Every delivery held for `device`, in order, with the time it has waited since; no longer held."""
        held = self._held.pop(device, deque())
        self._size -= len(held)
        return list(held)

    def overdue(self) -> list[tuple[float, Delivery]]:
        """What every device whose oldest has waited longer than `patience` holds; no longer held."""
        since = time.monotonic() - self.patience
        late = [device for device, held in self._held.items() if held[0][0] < since]
        return [entry for device in late for entry in self.take(device)]
