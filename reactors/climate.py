"""Climate: while any sensor in a room has the configured alert raised, ask the room's fans to run.

Its state is per room: the subjects with the alert raised. The first raise requests `on`
from each actuator of the configured kinds in that room, the last clear `off`. The
actuators decide and report (`actuator.changed.v1`). Stateful by room: run one instance.

It handles `alert.raised.v2` (an `alert.raised.v1` reaches it upcast, under the same id);
`alert_version = "v1"` runs it as it was before the migration (docs/evolving-events.md).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gateway.events import ActuationRequestedV1, AlertClearedV1, AlertName, AlertRaisedV1, AlertRaisedV2, Event
from gateway.fleet import Registry
from gateway.reactor import Context, Emission, Reactor
from gateway.settings import CommaSeparated, ReactorSettingsModel, Settings, load_fleet


class ClimateSettings(ReactorSettingsModel):
    alert: AlertName = "temperature.high"
    source: str = Field(default="reactor/threshold", description="only alerts from this source count")
    actuators: CommaSeparated = ["fan"]
    alert_version: Literal["v1", "v2"] = Field(default="v2", description="the version of alert.raised it handles "
                                               "(read at start); v1 only while a migration is rolled back")


class RoomState(BaseModel):
    alerting: list[str] = []  # subjects in the room with the alert raised


def build(settings: Settings, registry: Registry | None = None) -> Reactor:
    """`registry`: where the actuators are; by default the fleet file, else the quick fleet (load_fleet)."""
    if registry is None:
        registry = Registry(load_fleet(settings))
    reactor = Reactor("climate", description="runs a room's fans while a sensor there is too warm",
                      state=RoomState, settings=settings.reactor("climate", ClimateSettings),
                      partitionable=False)  # state by room

    raised: type[AlertRaisedV2 | AlertRaisedV1] = (
        AlertRaisedV2 if reactor.settings.alert_version == "v2" else AlertRaisedV1)

    @reactor.on(raised, AlertClearedV1, emits=[ActuationRequestedV1])
    def react(event: Event[AlertRaisedV2 | AlertRaisedV1 | AlertClearedV1], ctx: Context) -> list[Emission]:
        data = event.data
        if event.source != ctx.settings.source or data.alert != ctx.settings.alert:
            return []
        if data.site is None or data.room is None:
            return []
        room = ctx.state_of(f"{data.site}/{data.room}")
        needed_before = bool(room.alerting)
        if isinstance(data, AlertRaisedV2 | AlertRaisedV1):
            room.alerting = sorted({*room.alerting, event.subject})
        else:
            room.alerting = [subject for subject in room.alerting if subject != event.subject]
        if bool(room.alerting) == needed_before:
            return []
        state = "on" if room.alerting else "off"
        severity = f" ({data.severity})" if isinstance(data, AlertRaisedV2) else ""
        reason = f"{data.alert}{severity} {'raised' if room.alerting else 'cleared'} by {event.subject} in {data.room}"
        actuators = registry.actuators(data.site, data.room, tuple(ctx.settings.actuators))
        return [(actuator, ActuationRequestedV1(state=state, reason=reason)) for actuator in actuators]

    return reactor
