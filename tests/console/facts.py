"""Facts for the console's tests, built with the product's own models."""
from __future__ import annotations

from datetime import datetime

from gateway.events import (
    ActuationRequestedV1,
    ActuatorChangedV1,
    AlertRaisedV1,
    Event,
    EventRejectedV1,
    Measurement,
    ReadingV1,
    new_event,
)
from gateway.service import event_message
from gateway.transport import Message


def reading(subject: str, value: float = 21.5, kind: str | None = "temperature", site: str | None = "hq",
            room: str | None = "lab", metric: str = "temperature", unit: str = "Cel",
            time: datetime | None = None) -> Event:
    data = ReadingV1(measurements=[Measurement(name=metric, unit=unit, value=value)], kind=kind, site=site, room=room)
    return new_event(data, source=f"device/{subject}", subject=subject, time=time)


def alert(cause: Event, value: float = 29.0) -> Event:
    data = AlertRaisedV1(alert="temperature_high", metric="temperature", value=value, limit=28.0, unit="Cel",
                         above_seconds=2.0, site="hq", room="lab")
    return new_event(data, source="reactor/threshold", subject=cause.subject, cause=cause)


def request(cause: Event, fan: str) -> Event:
    return new_event(ActuationRequestedV1(state="on", reason="temperature_high"), source="reactor/climate",
                     subject=fan, cause=cause)


def changed(cause: Event, fan: str) -> Event:
    return new_event(ActuatorChangedV1(state="on", kind="fan", site="hq", room="lab"), source=f"device/{fan}",
                     subject=fan, cause=cause)


def rejected(subject: str, reason: str = "field 'temperature' must be a number, got str",
             payload: bytes = b'{"temperature": "hot"}') -> Event:
    data = EventRejectedV1.of(reason=reason, rejected_by="gateway/ingest", topic=f"devices/{subject}/telemetry",
                              payload=payload)
    return new_event(data, source="gateway/ingest", subject=subject)


def message(event: Event) -> Message:
    return event_message(event)
