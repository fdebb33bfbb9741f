"""Which request a profile actuator's next state report answers.

A Zigbee2MQTT, Tasmota, Shelly or Homie device does not echo the id of the request it obeyed, so
ingest remembers, per actuator, the latest `actuation.requested.v1` addressed to it; the device's
next state report within PENDING_SECONDS is taken as its answer (caused by that request).
"""
from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable

PENDING_SECONDS = 30.0  # a request not answered within this long is forgotten (counted)
MAX_PENDING = 10_000  # requests remembered at once; the oldest is forgotten first (counted)


class PendingRequests:
    """The latest unanswered request per actuator, bounded in number and age."""

    def __init__(self, counts: Counter[str], clock: Callable[[], float] = time.monotonic,
                 seconds: float = PENDING_SECONDS, limit: int = MAX_PENDING) -> None:
        self.counts = counts
        self.clock = clock
        self.seconds = seconds
        self.limit = limit
        self._pending: OrderedDict[str, tuple[str, str, float]] = OrderedDict()

    def remember(self, device: str, request_id: str, correlation_id: str) -> None:
        if device in self._pending:
            self.counts["requests_superseded"] += 1
            del self._pending[device]
        self._pending[device] = (request_id, correlation_id, self.clock() + self.seconds)
        self.counts["requests_remembered"] += 1
        while len(self._pending) > self.limit:
            self._pending.popitem(last=False)
            self.counts["requests_forgotten"] += 1

    def answered(self, device: str) -> tuple[str, str] | None:
        """(request id, correlation id) of the request the device's report answers, if one is pending."""
        pending = self._pending.pop(device, None)
        if pending is None:
            return None
        request_id, correlation_id, deadline = pending
        if self.clock() > deadline:
            self.counts["requests_expired"] += 1
            return None
        return request_id, correlation_id

    def __len__(self) -> int:
        return len(self._pending)
