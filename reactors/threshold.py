"""Threshold alerts: raised when a metric stays above a limit, cleared below limit minus hysteresis."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.events import AlertClearedV1, AlertRaisedV1, Event, EventData, ReadingV1
from gateway.settings import ThresholdSettings


@dataclass(slots=True)
class _SubjectState:
    above_since: datetime | None = None
    raised: bool = False


class ThresholdReactor:
    name = "threshold"
    consumes = ("reading.v1",)
    emits = ("alert.raised.v1", "alert.cleared.v1")

    def __init__(self, settings: ThresholdSettings) -> None:
        self.settings = settings
        self.alert = f"{settings.metric}.high"
        self.states: dict[str, _SubjectState] = {}

    def react(self, event: Event) -> list[EventData]:
        measurement = event.data.value_of(self.settings.metric) if isinstance(event.data, ReadingV1) else None
        if measurement is None:
            return []
        state = self.states.setdefault(event.subject, _SubjectState())
        limit = self.settings.high
        if measurement.value > limit:
            state.above_since = state.above_since or event.time
            above_seconds = (event.time - state.above_since).total_seconds()
            if not state.raised and above_seconds >= self.settings.min_duration:
                state.raised = True
                return [AlertRaisedV1(alert=self.alert, metric=measurement.name, value=measurement.value, limit=limit,
                                      unit=measurement.unit, above_seconds=above_seconds,
                                      site=event.data.site, room=event.data.room)]
            return []
        state.above_since = None
        if state.raised and measurement.value < limit - self.settings.hysteresis:
            state.raised = False
            return [AlertClearedV1(alert=self.alert, metric=measurement.name, value=measurement.value,
                                   limit=limit - self.settings.hysteresis, unit=measurement.unit,
                                   site=event.data.site, room=event.data.room)]
        return []
