"""Climate: while any sensor in a room has the configured alert raised, ask the room's fans to run.

Per room it keeps the set of subjects with the alert raised; the first raise requests
`on` from each actuator of the configured kinds in that room, the last clear `off`.
The actuators decide and report (`actuator.changed.v1`).
"""
from __future__ import annotations

from gateway.events import ActuationRequestedV1, AlertClearedV1, AlertRaisedV1, Event
from gateway.fleet import Registry
from gateway.reactor import Emission
from gateway.settings import ClimateSettings


class ClimateReactor:
    name = "climate"
    consumes = (AlertRaisedV1.event_type, AlertClearedV1.event_type)
    emits = (ActuationRequestedV1.event_type,)

    def __init__(self, settings: ClimateSettings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.alerting: dict[tuple[str, str], set[str]] = {}  # (site, room) -> subjects with the alert raised

    def react(self, event: Event) -> list[Emission]:
        data = event.data
        if not isinstance(data, (AlertRaisedV1, AlertClearedV1)) or data.alert != self.settings.alert:
            return []
        if data.site is None or data.room is None:
            return []  # the registry did not place this subject in a room
        room = (data.site, data.room)
        subjects = self.alerting.setdefault(room, set())
        needed_before = bool(subjects)
        if isinstance(data, AlertRaisedV1):
            subjects.add(event.subject)
        else:
            subjects.discard(event.subject)
        if bool(subjects) == needed_before:
            return []
        state = "on" if subjects else "off"
        reason = f"{data.alert} {'raised' if subjects else 'cleared'} by {event.subject} in {data.room}"
        actuators = self.registry.actuators(data.site, data.room, tuple(self.settings.actuators))
        return [(actuator, ActuationRequestedV1(state=state, reason=reason)) for actuator in actuators]
