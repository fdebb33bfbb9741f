"""Anomalies: a reading far outside its device's recent behaviour (`{metric}.outlier`, from rolling
statistics), and a sensor whose value has not changed for too long (`{metric}.stuck`). Each alert
is cleared when the metric behaves again. Outliers stay out of the statistics, but after
`min_samples` of them in a row they are the new normal: the statistics restart from them."""
from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from gateway.events import AlertClearedV1, AlertRaisedV1, Event, EventData, Measurement, ReadingV1
from gateway.reactor import Context, Reactor
from gateway.settings import CommaSeparated, ReactorSettingsModel, Settings


class AnomalySettings(ReactorSettingsModel):
    metrics: CommaSeparated = ["temperature", "humidity", "co2", "power"]
    window: int = Field(default=60, ge=5, description="readings in the rolling statistics")
    min_samples: int = Field(default=20, ge=3)
    sigmas: float = Field(default=5.0, gt=0, description="outlier: this many standard deviations from the mean")
    min_spread: float = Field(default=0.5, gt=0, description="floor of the deviation, in the metric's unit")
    stuck_seconds: float = Field(default=120.0, gt=0, description="an unchanged value this long: sensor stuck")

    @model_validator(mode="after")
    def _enough_window(self) -> AnomalySettings:
        if self.min_samples > self.window:
            raise ValueError(f"min_samples ({self.min_samples}) must not exceed window ({self.window})")
        return self


class MetricState(BaseModel):
    recent: list[float] = []  # the last `window` normal values
    outliers: list[float] = []  # consecutive outliers since the last normal value
    outlier: bool = False
    unchanged_since: datetime | None = None
    last_value: float | None = None
    stuck: bool = False


class AnomalyState(BaseModel):
    metrics: dict[str, MetricState] = {}


def build(settings: Settings) -> Reactor:
    reactor = Reactor("anomaly", description="outliers and stuck sensors", state=AnomalyState,
                      settings=settings.reactor("anomaly", AnomalySettings))

    @reactor.on(ReadingV1, emits=[AlertRaisedV1, AlertClearedV1])
    def inspect(event: Event[ReadingV1], ctx: Context) -> list[EventData]:
        facts: list[EventData] = []
        for m in event.data.measurements:
            if m.name in ctx.settings.metrics:
                metric = ctx.state.metrics.setdefault(m.name, MetricState())
                facts += _outlier(metric, m, event, ctx.settings) + _stuck(metric, m, event, ctx.settings)
        return facts

    return reactor


def _alert(raised: bool, name: str, m: Measurement, limit: float, event: Event[ReadingV1],
           seconds: float = 0.0) -> EventData:
    location = {"site": event.data.site, "room": event.data.room}
    if raised:
        return AlertRaisedV1(alert=name, metric=m.name, value=m.value, limit=limit, unit=m.unit,
                             above_seconds=seconds, **location)
    return AlertClearedV1(alert=name, metric=m.name, value=m.value, limit=limit, unit=m.unit, **location)


def _outlier(metric: MetricState, m: Measurement, event: Event[ReadingV1],
             settings: AnomalySettings) -> list[EventData]:
    facts = []
    if len(metric.recent) >= settings.min_samples:
        mean = sum(metric.recent) / len(metric.recent)
        spread = math.sqrt(sum((x - mean) ** 2 for x in metric.recent) / (len(metric.recent) - 1))
        bound = settings.sigmas * max(spread, settings.min_spread)
        outlying = abs(m.value - mean) > bound
        if outlying and len(metric.outliers) + 1 >= settings.min_samples:  # a level shift, not an outlier
            metric.recent, metric.outliers, outlying = metric.outliers + [m.value], [], False
        if outlying != metric.outlier:
            metric.outlier = outlying
            facts.append(_alert(outlying, f"{m.name}.outlier", m, mean + math.copysign(bound, m.value - mean), event))
        if outlying:
            metric.outliers.append(m.value)
            return facts  # an outlier does not join the statistics it stands out from
    metric.outliers = []
    metric.recent = (metric.recent + [m.value])[-settings.window:]
    return facts


def _stuck(metric: MetricState, m: Measurement, event: Event[ReadingV1], settings: AnomalySettings) -> list[EventData]:
    if m.value != metric.last_value or metric.unchanged_since is None:
        metric.last_value, metric.unchanged_since = m.value, event.time
        if metric.stuck:
            metric.stuck = False
            return [_alert(False, f"{m.name}.stuck", m, settings.stuck_seconds, event)]
        return []
    unchanged = (event.time - metric.unchanged_since).total_seconds()
    if not metric.stuck and unchanged >= settings.stuck_seconds:
        metric.stuck = True
        return [_alert(True, f"{m.name}.stuck", m, settings.stuck_seconds, event, unchanged)]
    return []
