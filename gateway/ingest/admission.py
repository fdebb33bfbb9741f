"""Per-device admission at ingest: one misbehaving device must not silence the others.

Each device has a budget, a token bucket (a sustained rate and a burst). A message beyond it is
shed: acknowledged and dropped before any decoding, validation or publishing, and counted for its
device. A device being shed becomes a `device.throttled.v1` fact when it starts, at most once a
period while it goes on (with the count shed), and once when it has kept within budget for a whole
period. The budget of a fleet device is its readings per second (1 / interval) times a headroom,
unless a `device:ID`, `kind:KIND` or `site:SITE` budget is set (docs/flow-control.md).
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ..errors import ConfigError
from ..events import DeviceThrottledV1, Event, new_event
from ..fleet import DeviceSpec
from ..settings import IngestSettings
from ..topics import ID_PATTERN

UNKNOWN_KEY = "unknown"  # the one bucket shared by messages whose device is not a valid id
MAX_DEVICES = 100_000  # buckets kept; devices beyond share the bucket of UNKNOWN_KEY (counted)


class Budget(NamedTuple):
    rate: float  # messages per second, sustained
    burst: float  # messages at once, after a quiet spell


class TopicKeys:
    """The device each topic belongs to, remembered: a flood repeats its few topics, and a dict
    lookup costs a tenth of working the device out of the topic again."""

    def __init__(self, device_key: Callable[[str], str | None], limit: int = MAX_DEVICES) -> None:
        self.device_key = device_key
        self.limit = limit
        self.known: dict[str, str | None] = {}

    def __call__(self, topic: str) -> str | None:
        try:
            return self.known[topic]
        except KeyError:
            key = self.device_key(topic)
            if len(self.known) < self.limit:
                self.known[topic] = key
            return key


class Budgets:
    """Each device's budget: its own, its kind's or its site's if set, else derived from its interval."""

    def __init__(self, settings: IngestSettings, devices: Iterable[DeviceSpec] = ()) -> None:
        self.settings = settings
        self.devices = {spec.id: spec for spec in devices}
        self.set = {key: Budget(value.rate, value.burst) for key, value in settings.budgets.items()}
        self._refuse_unknown_names()

    def of(self, device: str) -> Budget:
        spec = self.devices.get(device)
        keys = [f"device:{device}"] + ([f"kind:{spec.kind}", f"site:{spec.site}"] if spec else [])
        for key in keys:
            if key in self.set:
                return self.set[key]
        rate = self.settings.budget_headroom / spec.interval if spec else self.settings.budget_unknown_rate
        return Budget(rate, max(self.settings.budget_burst, rate, rate * self.settings.budget_burst_seconds))

    def _refuse_unknown_names(self) -> None:
        known = {"kind": {s.kind for s in self.devices.values()}, "site": {s.site for s in self.devices.values()}}
        for key in self.set:
            scope, _, name = key.partition(":")
            if scope in known and name not in known[scope]:
                fleet = ", ".join(sorted(known[scope])) or "none: no fleet file (fleet.file) describes the devices"
                raise ConfigError(f"invalid settings: ingest.budgets: {key!r}: the fleet has no such {scope}; "
                                  f"known: {fleet}")


class TokenBucket:
    """`rate` tokens a second up to `burst`; a message takes one."""

    __slots__ = ("budget", "tokens", "updated")

    def __init__(self, budget: Budget, now: float) -> None:
        self.budget = budget
        self.tokens = budget.burst
        self.updated = now

    def take(self, now: float) -> bool:
        tokens = min(self.budget.burst, self.tokens + (now - self.updated) * self.budget.rate)
        self.updated = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False


class Throttling:
    """One device while it is being shed: what has been said about it and what not yet."""

    __slots__ = ("shed_total", "reported", "last_report", "last_shed", "started_reported")

    def __init__(self, now: float) -> None:
        self.shed_total = 0
        self.reported = 0  # of shed_total, the count already in a fact
        self.last_report = now
        self.last_shed = now
        self.started_reported = False


class Admission:
    """Decides per message, by its device, whether ingest processes it or sheds it; keeps the count.

    `admits()` is the hot path: a dict lookup and a token bucket. `reports()`, called periodically,
    turns the throttled devices' life cycle into facts and their counts into counters.
    """

    def __init__(self, budgets: Budgets, counts: Counter[str], next_sequence: Callable[[], int],
                 describe: Callable[[str], dict[str, str]] = lambda device: {},
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budgets = budgets
        self.counts = counts
        self.next_sequence = next_sequence
        self.describe = describe
        self.clock = clock
        self.period = budgets.settings.throttle_report_seconds
        self.buckets: dict[str, TokenBucket] = {}
        self.throttled: dict[str, Throttling] = {}

    def admits(self, device: str | None) -> bool:
        now = self.clock()
        if device is None:
            self.counts["admission_shared_bucket"] += 1
        key = device or UNKNOWN_KEY
        bucket = self.buckets.get(key)
        if bucket is None:
            key, bucket = self._new_bucket(key, now)
        if bucket.take(now):
            return True
        self.counts["shed"] += 1
        throttling = self.throttled.get(key)
        if throttling is None:
            throttling = self.throttled[key] = Throttling(now)
        throttling.shed_total += 1
        throttling.last_shed = now
        return False

    def reports(self) -> list[Event]:
        """The throttled facts due now; also sets each throttled device's `shed:ID` counter."""
        now = self.clock()
        facts = []
        for device, throttling in list(self.throttled.items()):
            self.counts[f"shed:{device}"] = throttling.shed_total
            phase = self._phase_due(throttling, now)
            if phase is None:
                continue
            facts.append(self._fact(device, throttling, phase))
            throttling.reported, throttling.last_report = throttling.shed_total, now
            throttling.started_reported = True
            if phase == "ended":
                del self.throttled[device]
        return facts

    def _phase_due(self, throttling: Throttling, now: float) -> str | None:
        if not throttling.started_reported:
            return "started"
        if now - throttling.last_shed >= self.period:
            return "ended"
        if throttling.shed_total > throttling.reported and now - throttling.last_report >= self.period:
            return "continuing"
        return None

    def _fact(self, device: str, throttling: Throttling, phase: str) -> Event:
        budget = self.buckets[device].budget
        data = DeviceThrottledV1(phase=phase, shed=throttling.shed_total - throttling.reported,
                                 shed_total=throttling.shed_total, rate=budget.rate, burst=budget.burst,
                                 **self.describe(device))
        return new_event(data, source="gateway/ingest", subject=device, sequence=self.next_sequence())

    def _new_bucket(self, device: str, now: float) -> tuple[str, TokenBucket]:
        if not ID_PATTERN.fullmatch(device) or len(self.buckets) >= MAX_DEVICES:
            self.counts["admission_shared_bucket"] += 1
            device = UNKNOWN_KEY
            if device in self.buckets:
                return device, self.buckets[device]
        bucket = self.buckets[device] = TokenBucket(self.budgets.of(device), now)
        return device, bucket
