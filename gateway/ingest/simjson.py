"""The flat JSON that the project's simulated devices publish on `devices/{id}/telemetry`.

Sensors report metrics, actuators report their state:

    {"seq": 42, "ts": "2026-11-22T10:00:00.123Z", "temperature": 21.5, "battery": 97}
    {"seq": 7, "ts": "2026-11-22T10:00:01.000Z", "state": "on", "request": "01M8...", "correlation": "01M8..."}

`seq` is the device's message counter; `ts` (RFC 3339, optional) is the device clock.
A sensor's other keys are metrics from FIELD_UNITS. An actuator reports `state`
(on/off) and/or `position` (percent open), and names the `request` it answered and
that request's `correlation`, if any. Anything else is rejected with a reason.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from ..errors import InvalidInput
from ..events import (
    MAX_CLOCK_AHEAD,
    MAX_SEQUENCE,
    ActuatorChangedV1,
    EventData,
    Measurement,
    ReadingV1,
    describe_validation_error,
)
from ..topics import ID_PATTERN

MAX_PAYLOAD = 16 * 1024
MAX_AGE = timedelta(days=7)

# Native field name -> SenML name and unit (RFC 8428).
FIELD_UNITS: dict[str, str] = {
    "temperature": "Cel",
    "humidity": "%RH",
    "co2": "ppm",
    "power": "W",
    "energy": "Wh",
    "battery": "%EL",
    "illuminance": "lx",
    "pressure": "Pa",
    "motion": "/",  # 1 while the PIR sees movement, else 0
    "door_open": "/",  # 1 open, 0 closed
}
ACTUATOR_KEYS = ("state", "position")
CAUSE_KEYS = ("request", "correlation")


@dataclass(frozen=True, slots=True)
class DecodedTelemetry:
    """A sensor's measurements, or an actuator's reported state (then `measurements` is empty)."""

    sequence: int
    time: datetime | None
    measurements: tuple[Measurement, ...] = ()
    actuator: ActuatorChangedV1 | None = None
    caused_by: tuple[str, str] | None = None  # (request id, its correlation id)

    @property
    def data(self) -> EventData:
        """ReadingV1 or ActuatorChangedV1, without location (built on demand: ingest needs only the parts)."""
        if self.actuator is not None:
            return self.actuator
        return ReadingV1(measurements=list(self.measurements))


def decode(payload: bytes, now: datetime) -> DecodedTelemetry:
    """Validate one telemetry payload; InvalidInput's message is the rejection reason."""
    document = parse_object(payload)
    sequence = document.pop("seq", None)
    if type(sequence) is not int or sequence < 0:
        raise InvalidInput(f"field 'seq' must be a non-negative integer, got {sequence!r}"[:200])
    if sequence > MAX_SEQUENCE:
        raise InvalidInput(f"field 'seq' is larger than {MAX_SEQUENCE}")
    time = _parse_time(document.pop("ts", None), now)
    if not document.keys().isdisjoint(ACTUATOR_KEYS):
        return _actuator_report(document, sequence, time)
    measurements = tuple([_measurement(name, value) for name, value in document.items()])
    if not measurements:
        raise InvalidInput(f"no measurements: expected one of {', '.join(FIELD_UNITS)}")
    return DecodedTelemetry(sequence, time, measurements)


def _actuator_report(document: dict, sequence: int, time: datetime | None) -> DecodedTelemetry:
    cause = {key: document.pop(key) for key in CAUSE_KEYS if key in document}
    unknown = set(document) - set(ACTUATOR_KEYS)
    if unknown:
        raise InvalidInput(f"unknown field {sorted(unknown)[0][:64]!r} in an actuator report; "
                           "known: seq, ts, state, position, request, correlation")
    try:
        data = ActuatorChangedV1.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(f"actuator report: {describe_validation_error(exc)}") from None
    return DecodedTelemetry(sequence, time, actuator=data, caused_by=_caused_by(cause))


def _caused_by(cause: dict) -> tuple[str, str] | None:
    if not cause:
        return None
    if set(cause) != set(CAUSE_KEYS):
        raise InvalidInput("fields 'request' and 'correlation' come together or not at all")
    for key, value in cause.items():
        if not isinstance(value, str) or not 10 <= len(value) <= 64 or not ID_PATTERN.fullmatch(value):
            raise InvalidInput(f"field {key!r} must be an event id, got {str(value)[:64]!r}")
    return cause["request"], cause["correlation"]


def parse_object(payload: bytes, limit: int = MAX_PAYLOAD) -> dict:
    """A bounded UTF-8 JSON object with unique keys and finite numbers, else InvalidInput saying why."""
    if len(payload) > limit:
        raise InvalidInput(f"payload of {len(payload)} bytes exceeds {limit}")
    try:
        document = _JSON.decode(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"payload is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except RecursionError:
        raise InvalidInput("payload is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise InvalidInput(f"payload is not usable JSON: {exc}"[:200]) from None
    if not isinstance(document, dict):
        raise InvalidInput(f"payload must be a JSON object, got {type(document).__name__}")
    return document


def _unique(pairs: list[tuple[str, object]]) -> dict:
    """An object whose keys are unique: which of two values counts would depend on the parser."""
    document = dict(pairs)
    if len(document) < len(pairs):  # the rare case: find the first key that came again
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidInput(f"field {key[:64]!r} appears more than once")
            seen.add(key)
    return document


def _reject_constant(name: str) -> float:
    raise InvalidInput(f"payload contains {name}, which is not a number")


_JSON = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique)


def _parse_time(value: object, now: datetime) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"field 'ts' must be an RFC 3339 string, got {type(value).__name__}")
    try:
        time = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"field 'ts' is not an RFC 3339 time: {value[:64]!r}") from None
    if time.tzinfo is None:
        raise InvalidInput(f"field 'ts' has no UTC offset: {value[:64]!r}")
    time = time.astimezone(UTC)
    if time > now + MAX_CLOCK_AHEAD:
        raise InvalidInput(f"field 'ts' is {(time - now).total_seconds():.0f}s in the future")
    if time < now - MAX_AGE:
        raise InvalidInput(f"field 'ts' is older than {MAX_AGE.days} days")
    return time


def _measurement(name: str, value: object) -> Measurement:
    unit = FIELD_UNITS.get(name)
    if unit is None:
        raise InvalidInput(f"unknown field {name[:64]!r}; known: seq, ts, {', '.join(FIELD_UNITS)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"field {name!r} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InvalidInput(f"field {name!r} is not a finite number")
    return _known_measurement(name, unit, number)


_MEASUREMENTS: dict[tuple[str, float, float], Measurement] = {}
MEASUREMENTS_KEPT = 4096  # distinct (metric, value) pairs remembered; beyond, the memory starts over


def _known_measurement(name: str, unit: str, number: float) -> Measurement:
    """A Measurement is immutable, so one validated earlier for the same metric and value is reused:
    sensors repeat their values, and a dict look-up costs a fraction of the model's validation."""
    key = (name, number, math.copysign(1.0, number))  # the sign tells -0.0 from 0.0, which compare equal
    known = _MEASUREMENTS.get(key)
    if known is None:
        known = Measurement(name=name, unit=unit, value=number)
        if len(_MEASUREMENTS) >= MEASUREMENTS_KEPT:
            _MEASUREMENTS.clear()
        _MEASUREMENTS[key] = known
    return known
