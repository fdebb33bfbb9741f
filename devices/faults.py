"""Fault injection: what real devices do to the rest of the system, on purpose and counted.

Per device at start: a stuck sensor (repeats its first sample) and clock skew. Per
message: dropping off the network, duplicate publishes (same `seq`), out-of-order
publishes (held back one message) and malformed payloads.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Any

from gateway.fleet import Faults

from .base import as_json

# Payloads a broken device might send; ingest must reject each with a reason.
MALFORMED = (
    b'{"seq": 1, "temperature": ',  # truncated
    b'{"seq": "one", "temperature": 21.5}',  # wrong type
    b'{"seq": 1, "temperature": NaN}',  # not a number
    b"\xff\xfe\x00garbage",  # not UTF-8
    b"[]",  # not an object
)


class FaultInjector:
    def __init__(self, faults: Faults, rng: random.Random) -> None:
        self.faults = faults
        self.rng = rng
        self.counts: Counter[str] = Counter()
        self.stuck = rng.random() < faults.stuck
        self.skew_seconds = faults.clock_skew_seconds if rng.random() < faults.clock_skew else 0.0
        self._held: bytes | None = None
        self._stuck_sample: dict[str, Any] | None = None

    def sample(self, fresh: dict[str, Any]) -> dict[str, Any]:
        """A stuck sensor keeps reporting its first values."""
        if not self.stuck:
            return fresh
        if self._stuck_sample is None:
            self._stuck_sample = fresh
        self.counts["stuck"] += 1
        return self._stuck_sample

    def drops_out(self) -> bool:
        if self.faults.dropout and self.rng.random() < self.faults.dropout:
            self.counts["dropout"] += 1
            return True
        return False

    def payloads(self, payload: dict[str, Any]) -> list[bytes]:
        """What to publish now for this telemetry: nothing, it, it twice, or it and a held-back one."""
        encoded = as_json(payload)
        roll = self.rng.random
        if roll() < self.faults.malformed:
            self.counts["malformed"] += 1
            encoded = self.rng.choice(MALFORMED)
        out = [encoded]
        if roll() < self.faults.duplicate:
            self.counts["duplicate"] += 1
            out.append(encoded)
        if self._held is not None:
            out.append(self._held)
            self._held = None
        elif roll() < self.faults.out_of_order:
            self.counts["out_of_order"] += 1
            self._held, out = out[0], out[1:]
        return out
