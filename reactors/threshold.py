"""Threshold alerts: `{metric}.high` / `{metric}.low` raised when a reading stays beyond a limit for
a minimum duration, cleared once it is back past the limit by the hysteresis. Limits come from
its settings, [reactors.threshold], with rules per metric, site, room and device kind.

It raises `alert.raised.v2` (with a severity and the rule); `alert_versions` says which versions go
out, the older derived from the newer under the same id, for the migration window of
docs/evolving-events.md."""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field

from gateway.events import (
    AlertClearedV1,
    AlertRaisedV1,
    AlertRaisedV2,
    Event,
    EventData,
    Measurement,
    MetricName,
    ReadingV1,
    Severity,
)
from gateway.reactor import Context, Reactor
from gateway.settings import ReactorSettingsModel, Settings, comma_separated


class ThresholdRule(ReactorSettingsModel):
    """Limits for one metric, optionally only in one site or room; unset limits are not checked."""

    metric: MetricName
    high: float | None = None
    low: float | None = None
    hysteresis: float = Field(default=1.0, ge=0)
    min_duration: float = Field(default=3.0, ge=0, description="seconds beyond a limit before raising")
    site: str | None = None
    room: str | None = None
    kind: str | None = None
    severity: Severity = "warning"


AlertVersions = Annotated[list[Literal["v1", "v2"]], BeforeValidator(comma_separated)]


class ThresholdSettings(ReactorSettingsModel):
    """The default rule (metric, high, low, ...) plus `rules` for other metrics, sites and rooms."""

    metric: MetricName = "temperature"
    high: float | None = 28.0
    low: float | None = None
    hysteresis: float = Field(default=1.0, ge=0)
    min_duration: float = Field(default=3.0, ge=0, description="seconds beyond a limit before raising")
    severity: Severity = "warning"
    rules: list[ThresholdRule] = []
    alert_versions: AlertVersions = Field(
        default=["v1", "v2"], min_length=1, description="which versions of alert.raised go out, e.g. v1,v2 "
                                                        "(read at start)")

    def rule_for(self, metric: str, site: str | None, room: str | None,
                 kind: str | None = None) -> ThresholdRule | None:
        """The most specific rule for a metric of this reading: by room, then site, then device kind, then any."""
        default = _rule(self.metric, self.high, self.low, self.hysteresis, self.min_duration, self.severity)
        candidates = [rule for rule in (*self.rules, default) if rule.metric == metric
                      and rule.site in (None, site) and rule.room in (None, room) and rule.kind in (None, kind)]
        return max(candidates, key=lambda r: (r.room is not None, r.site is not None, r.kind is not None), default=None)


@lru_cache(maxsize=64)  # built once per set of values, not once per reading
def _rule(metric: str, high: float | None, low: float | None, hysteresis: float, min_duration: float,
          severity: Severity) -> ThresholdRule:
    return ThresholdRule(metric=metric, high=high, low=low, hysteresis=hysteresis, min_duration=min_duration,
                         severity=severity)


class RuleBook:
    """`rule_for` of the current settings, remembered per (metric, site, room, kind): the rules are looked
    up once per kind of reading, not once per reading. A reload replaces the settings (they are frozen),
    which starts a new book."""

    MAX_ENTRIES = 4096  # readings name their own site, room and kind: a stream of new ones must not grow it forever

    def __init__(self) -> None:
        self.settings: ThresholdSettings | None = None
        self.rules: dict[tuple[str, str | None, str | None, str | None], ThresholdRule | None] = {}

    def rule_for(self, settings: ThresholdSettings, metric: str, site: str | None, room: str | None,
                 kind: str | None) -> ThresholdRule | None:
        if settings is not self.settings or len(self.rules) >= self.MAX_ENTRIES:
            self.settings, self.rules = settings, {}
        key = (metric, site, room, kind)
        if key not in self.rules:
            self.rules[key] = settings.rule_for(metric, site, room, kind)
        return self.rules[key]


class LimitState(BaseModel):
    beyond_since: datetime | None = None
    raised: bool = False


class ThresholdState(BaseModel):
    limits: dict[str, LimitState] = {}  # by alert name, e.g. "temperature.high"


def build(settings: Settings) -> Reactor:
    reactor = Reactor("threshold", description="alerts when a metric stays beyond its limits",
                      state=ThresholdState, settings=settings.reactor("threshold", ThresholdSettings))

    rules = RuleBook()

    @reactor.on(ReadingV1, emits=[AlertRaisedV2, AlertClearedV1])
    def check(event: Event[ReadingV1], ctx: Context) -> list[EventData]:
        data = event.data
        facts: list[EventData] = []
        for measurement in data.measurements:
            rule = rules.rule_for(ctx.settings, measurement.name, data.site, data.room, data.kind)
            if rule is None:
                continue
            for direction, limit in (("high", rule.high), ("low", rule.low)):
                if limit is not None:
                    facts += _check(ctx.state, event, measurement, direction, limit, rule)
        return facts

    versions: dict[str, type[EventData]] = {"v1": AlertRaisedV1, "v2": AlertRaisedV2}
    reactor.emit_versions(AlertRaisedV2, [versions[v] for v in sorted(set(reactor.settings.alert_versions))])
    return reactor


def _check(state: ThresholdState, event: Event[ReadingV1], m: Measurement, direction: str, limit: float,
           rule: ThresholdRule) -> list[EventData]:
    alert = f"{m.name}.{direction}"
    limit_state = state.limits.get(alert)
    if limit_state is None:
        limit_state = state.limits[alert] = LimitState()
    sign = 1 if direction == "high" else -1
    if sign * (m.value - limit) > 0:
        if limit_state.beyond_since is None:
            limit_state.beyond_since = event.time
        beyond = (event.time - limit_state.beyond_since).total_seconds()
        if not limit_state.raised and beyond >= rule.min_duration:
            limit_state.raised = True
            return [AlertRaisedV2(alert=alert, metric=m.name, value=m.value, limit=limit, unit=m.unit,
                                  above_seconds=beyond, severity=rule.severity, rule=_described(rule, direction, limit),
                                  **_location(event.data))]
        return []
    if limit_state.beyond_since is not None:  # assigned only when it changes: most readings are within limits
        limit_state.beyond_since = None
    clear_below = limit - sign * rule.hysteresis
    if limit_state.raised and sign * (m.value - clear_below) < 0:
        limit_state.raised = False
        return [AlertClearedV1(alert=alert, metric=m.name, value=m.value, limit=clear_below, unit=m.unit,
                               **_location(event.data))]
    return []


def _location(data: ReadingV1) -> dict[str, str | None]:
    return {"site": data.site, "room": data.room, "kind": data.kind}


def _described(rule: ThresholdRule, direction: str, limit: float) -> str:
    """The rule as people read it: `temperature > 28 for 3s in hq/lab`."""
    where = "/".join(part for part in (rule.site, rule.room) if part)
    kind = f" on {rule.kind}" if rule.kind else ""
    return (f"{rule.metric} {'>' if direction == 'high' else '<'} {limit:g} for {rule.min_duration:g}s"
            f"{f' in {where}' if where else ''}{kind}")
