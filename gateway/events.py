"""The contract: the CloudEvents 1.0 envelope and the data model of every event type.

Events travel in structured JSON mode (`application/cloudevents+json`). The data models
here are the single source for validation, storage and documentation.
"""
from __future__ import annotations

import functools
import hashlib
import math
import operator
import os
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_validator,
)

from .errors import InvalidInput
from .topics import EVENT_TYPE_PATTERN, ID_PATTERN

CONTENT_TYPE = "application/cloudevents+json"
# SenML units (RFC 8428 and the IANA registry) the gateway accepts.
SENML_UNITS = frozenset({"Cel", "%RH", "ppm", "W", "Wh", "%EL", "%", "lx", "Pa", "V", "A", "/", "s"})

Identifier = Annotated[str, Field(pattern=rf"^{ID_PATTERN.pattern}$", max_length=64)]
# A measurement's name; also the `metric` tag of stored readings, which `choreo history` filters on.
METRIC_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
MetricName = Annotated[str, Field(pattern=rf"^{METRIC_NAME_PATTERN.pattern}$")]
AlertName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]
# Who emitted a fact: `device/ID`, `reactor/NAME`, `gateway/ingest`, `service/NAME` (any language).
SOURCE_PATTERN = re.compile(rf"(device|reactor|gateway|service)/{ID_PATTERN.pattern}")
Source = Annotated[str, Field(pattern=rf"^{SOURCE_PATTERN.pattern}$")]
EventId = Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{10,64}$")]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DIGIT_PAIRS = [high + low for high in _CROCKFORD for low in _CROCKFORD]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # no event is older (InfluxDB stores nothing before 1677)
MAX_CLOCK_AHEAD = timedelta(minutes=5)  # how far ahead of a receiver's clock an event's time may be
MAX_SEQUENCE = 2**63 - 1  # InfluxDB and SQLite store 64-bit integers


def new_event_id() -> str:
    """A ULID: 48-bit millisecond timestamp and 80 random bits, Crockford base32, sortable by time."""
    return _ulid(time.time_ns() // 1_000_000, os.urandom(10))


def derived_event_id(moment: datetime, key: bytes) -> str:
    """A ULID whose 80 'random' bits are a hash of `key`: the same input always gets the same id.

    Ingest derives a device message's event id from its topic and payload, so a message
    the broker or the device delivers twice becomes one fact, not two.
    """
    milliseconds = int(moment.timestamp() * 1000)
    return _ulid(milliseconds, hashlib.blake2b(key, digest_size=10).digest())


def _ulid(milliseconds: int, entropy: bytes) -> str:
    # 128 bits in 26 base32 digits (130 bits, the top two zero), ten bits (two digits) at a time
    value = milliseconds << 80 | int.from_bytes(entropy, "big")
    return "".join([_DIGIT_PAIRS[value >> shift & 1023] for shift in range(120, -1, -10)])


def utc_now() -> datetime:
    return datetime.now(UTC)


# An RFC 3339 time with its UTC offset, not before 1970, as a datetime in UTC. The checks run in
# pydantic-core, and describe_validation_error words their refusals; only the conversion is
# Python. It is worth its call: pydantic-core's own UTC (TzInfo) costs ten times
# datetime.UTC in every comparison a consumer makes (pydantic/pydantic#7897).
UtcTime = Annotated[AwareDatetime, Field(ge=EPOCH), AfterValidator(lambda moment: moment.astimezone(UTC))]
_EPOCH_TEXT = EPOCH.isoformat().replace("+00:00", "Z")  # how pydantic-core names the bound in its error
# A SenML unit, checked by pydantic-core as one pattern. Its JSON Schema stays the plain string it was:
# the values accepted are the same, but `choreo contract check` would read a pattern as a narrowing.
SENML_UNIT_PATTERN = "^(" + "|".join(map(re.escape, sorted(SENML_UNITS))) + ")$"
SenmlUnit = Annotated[str, Field(pattern=SENML_UNIT_PATTERN), WithJsonSchema({"type": "string"})]


class EventData(BaseModel):
    """Base of every event's `data`. Subclasses set `event_type`."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    event_type: ClassVar[str]


class Measurement(BaseModel):
    """One SenML-style measurement: name, unit and a finite value."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    name: MetricName
    unit: SenmlUnit
    value: float


class Located(EventData):
    """Where the subject is and what kind of device it is, when the fleet registry knows it."""

    site: Identifier | None = None
    room: Identifier | None = None
    kind: Identifier | None = None


class ReadingV1(Located):
    event_type: ClassVar[str] = "reading.v1"
    measurements: list[Measurement] = Field(min_length=1, max_length=32)

    def value_of(self, name: str) -> Measurement | None:
        return next((m for m in self.measurements if m.name == name), None)


class _Alert(Located):
    """An alert about one metric of the subject: the value that decided it and the limit it crossed."""

    alert: AlertName
    metric: MetricName
    value: float
    limit: float
    unit: str


class AlertRaisedV1(_Alert):
    event_type: ClassVar[str] = "alert.raised.v1"
    above_seconds: float = Field(ge=0)


Severity = Literal["info", "warning", "critical"]


class AlertRaisedV2(_Alert):
    """alert.raised.v1 plus how serious the alert is and the rule that raised it (docs/evolving-events.md)."""

    event_type: ClassVar[str] = "alert.raised.v2"
    above_seconds: float = Field(ge=0)
    severity: Severity
    rule: str = Field(min_length=1, max_length=256, description="the rule that raised it, e.g. temperature > 28 for 3s")

    @classmethod
    def from_v1(cls, old: AlertRaisedV1) -> AlertRaisedV2:
        """The upcaster: v1 said neither, so a `warning` raised by the rule named like the alert."""
        return cls(**old.model_dump(), severity="warning", rule=old.alert)

    def to_v1(self) -> AlertRaisedV1:
        """The downcaster, for a producer's migration window: the same alert without what v1 lacks."""
        return AlertRaisedV1(**self.model_dump(exclude={"severity", "rule"}))


class AlertClearedV1(_Alert):
    event_type: ClassVar[str] = "alert.cleared.v1"


SwitchState = Literal["on", "off"]
Position = Annotated[float, Field(ge=0, le=100)]


class _ActuatorState(EventData):
    """A relay's `state`, a valve's `position` (percent open), or both."""

    state: SwitchState | None = None
    position: Position | None = None

    @model_validator(mode="after")
    def _something_to_set(self) -> _ActuatorState:
        if self.state is None and self.position is None:
            raise ValueError("needs a state or a position")
        return self


class ActuationRequestedV1(_ActuatorState):
    """A reactor's decision that the subject (an actuator) should be in this state; the actuator decides."""

    event_type: ClassVar[str] = "actuation.requested.v1"
    reason: str = Field(max_length=256)


class ActuatorChangedV1(_ActuatorState, Located):
    """An actuator reported a new state; caused by the request it answered, if any."""

    event_type: ClassVar[str] = "actuator.changed.v1"


class DeviceOnlineV1(EventData):
    event_type: ClassVar[str] = "device.online.v1"


class DeviceOfflineV1(EventData):
    """The device went away: it said so or its will did (`status`), or it fell silent (`silent`)."""

    event_type: ClassVar[str] = "device.offline.v1"
    reason: Literal["status", "silent"] = "status"
    silent_seconds: float | None = Field(default=None, ge=0)


class EnergyMeasuredV1(Located):
    """Energy a meter counted over one closed period."""

    event_type: ClassVar[str] = "energy.measured.v1"
    period_start: UtcTime
    period_end: UtcTime
    energy_wh: float = Field(ge=0)


class EventRejectedV1(EventData):
    event_type: ClassVar[str] = "event.rejected.v1"
    EXCERPT_LIMIT: ClassVar[int] = 512
    reason: str = Field(max_length=1024)
    rejected_by: Source
    topic: str = Field(max_length=512)
    excerpt: str = Field(max_length=EXCERPT_LIMIT)

    @classmethod
    def excerpt_of(cls, payload: bytes) -> str:
        """A printable, bounded copy of a rejected payload."""
        return payload[: cls.EXCERPT_LIMIT].decode("utf-8", errors="replace")[: cls.EXCERPT_LIMIT]

    @classmethod
    def of(cls, *, reason: str, rejected_by: str, topic: str, payload: bytes) -> EventRejectedV1:
        """The rejection of one input, every field cut to its bound."""
        return cls(reason=reason[:1024], rejected_by=rejected_by, topic=topic[:512], excerpt=cls.excerpt_of(payload))


class DeviceThrottledV1(Located):
    """Ingest is shedding the subject's messages: it sends more than its budget (a token bucket).

    `started` when it first exceeds, `continuing` at most once a period while it does, `ended` once it
    has kept within its budget for a whole period; `shed` counts the messages dropped since the
    previous fact about it, `shed_total` since it started."""

    event_type: ClassVar[str] = "device.throttled.v1"
    phase: Literal["started", "continuing", "ended"]
    shed: int = Field(ge=0)
    shed_total: int = Field(ge=0)
    rate: float = Field(gt=0, description="the budget's sustained messages per second")
    burst: float = Field(ge=1, description="the budget's messages at once")


class DeviceDiscoveredV1(EventData):
    """A device convention announced a device that the fleet registry does not know (docs/devices.md).

    Said once per device; ingest takes nothing else from it until the fleet file names it."""

    event_type: ClassVar[str] = "device.discovered.v1"
    profile: str = Field(pattern=r"^[a-z0-9]{1,32}$", description="the convention it speaks, e.g. tasmota")
    native: str = Field(min_length=1, max_length=256, description="its name in that convention")
    announced: str = Field(max_length=512, description="what it said about itself, or the topic it published on")
    topic: str = Field(max_length=512)


class AnnouncedData(EventData):
    """The `data` of a type this process knows only from a schema a service announced
    (gateway/announced.py): validated against that schema, every field kept as it came."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)


BUILT_IN_TYPES: Mapping[str, type[EventData]] = MappingProxyType({
    model.event_type: model
    for model in (ReadingV1, AlertRaisedV1, AlertRaisedV2, AlertClearedV1, ActuationRequestedV1, ActuatorChangedV1,
                  DeviceOnlineV1, DeviceOfflineV1, DeviceThrottledV1, DeviceDiscoveredV1, EnergyMeasuredV1,
                  EventRejectedV1)
})
# The types this process knows in code: the built-ins and those registered (a plugin's new facts).
EVENT_TYPES: dict[str, type[EventData]] = dict(BUILT_IN_TYPES)


D = TypeVar("D", bound=EventData)


class Event(BaseModel, Generic[D]):
    """A CloudEvents 1.0 envelope whose `data` is the typed model of its `type`.

    Build one with new_event(); parse one with decode_event(), which picks the envelope
    of the event's type (below) so the whole payload is validated in one pass.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    specversion: Literal["1.0"] = "1.0"
    id: EventId
    source: Source
    type: Annotated[str, Field(pattern=rf"^{EVENT_TYPE_PATTERN.pattern}$")]
    subject: Identifier
    time: UtcTime
    datacontenttype: Literal["application/json"] = "application/json"
    sequence: int | None = Field(default=None, ge=0, le=MAX_SEQUENCE)
    correlationid: EventId
    causationid: EventId | None = None
    # When the producer emitted the fact (`time` is when it happened; for a reactor's fact, its
    # cause's time). `choreo trace` and the latency benchmark measure steps with it.
    emittedtime: UtcTime | None = None
    data: SerializeAsAny[D]  # Event[ReadingV1] in a handler's signature: its data is a ReadingV1

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def _envelope_of(model: type[EventData]) -> type[Event]:
    name = "Event_" + model.event_type.replace(".", "_")
    # a Literal of a value known only at run time, which type checkers cannot follow
    fields: dict[str, Any] = {"type": (Literal[model.event_type], ...), "data": (model, ...)}
    return create_model(name, __base__=Event, **fields)


ENVELOPES: dict[str, type[Event]] = {event_type: _envelope_of(model) for event_type, model in EVENT_TYPES.items()}
# The built-ins decode in one pass through a discriminated union; other types fall back to their own envelope.
_ANY_ENVELOPE: Any = functools.reduce(operator.or_, ENVELOPES.values())  # every envelope in one union: A | B | ...
_DECODER: TypeAdapter[Event] = TypeAdapter(Annotated[_ANY_ENVELOPE, Field(discriminator="type")])
_ANNOUNCED_ENVELOPE: type[Event] = create_model("Event_announced", __base__=Event, data=(AnnouncedData, ...))


def register_event_type(model: type[EventData]) -> str:
    """Make `model` the data model of its `event_type` in this process (a plugin's new fact type):
    new_event() builds and decode_event() decodes its events. Returns the type's name.

    ValueError if `model` is not an EventData subclass with a well-formed `event_type` of its
    own, or if another model already has that name. Registering the same model again is a no-op.
    """
    if not isinstance(model, type) or not issubclass(model, EventData) or model is AnnouncedData:
        raise ValueError(f"{model!r} is not a subclass of gateway.events.EventData")
    event_type = getattr(model, "event_type", None)  # the base class declares it without a value
    if not isinstance(event_type, str) or len(event_type) > 128 or not EVENT_TYPE_PATTERN.fullmatch(event_type):
        raise ValueError(f"{_name(model)}.event_type {event_type!r}: expected a dotted lower-case name with a "
                         "major version, e.g. door.opened.v1")
    known = EVENT_TYPES.get(event_type)
    if known is not None and known is not model:
        raise ValueError(f"event type {event_type!r} already has the data model {_name(known)}; "
                         f"{_name(model)} needs a name of its own")
    if known is None:
        ENVELOPES[event_type] = _envelope_of(model)
        EVENT_TYPES[event_type] = model
    return event_type


def _name(model: type) -> str:
    return f"{model.__module__}.{model.__qualname__}"


class AnnouncedTypes(Protocol):
    """The types known from the schemas services announce (gateway/announced.py's AnnouncedSchemas)."""

    def __contains__(self, event_type: object) -> bool: ...

    def check(self, event_type: str, source: str, data: Mapping[str, Any]) -> None:
        """Raise InvalidInput naming the path and the reason unless `data` satisfies the announced schema."""


def new_event(
    data: D,
    *,
    source: str,
    subject: str,
    time: datetime | None = None,
    sequence: int | None = None,
    cause: Event | None = None,
    caused_by: tuple[str, str] | None = None,
    event_id: str | None = None,
) -> Event[D]:
    """Build an event; a caused event inherits the correlation id and names its cause.

    `caused_by` is (causation id, correlation id) for a cause known only by its ids,
    such as the request an actuator reports having answered.
    """
    event_id = event_id or new_event_id()
    if cause is not None:
        caused_by = (cause.id, cause.correlationid)
    causationid, correlationid = caused_by or (None, event_id)
    return ENVELOPES[data.event_type](
        id=event_id,
        source=source,
        type=data.event_type,
        subject=subject,
        time=time or utc_now(),
        sequence=sequence,
        correlationid=correlationid,
        causationid=causationid,
        emittedtime=utc_now(),
        data=data,
    )


def decode_event(payload: bytes, *, topic: str | None = None, now: datetime | None = None,
                 announced: AnnouncedTypes | None = None) -> Event:
    """Parse and validate a structured-mode CloudEvent strictly (no "21.5" for 21.5); InvalidInput
    names the first problem. With `topic`, the event must be the one its topic names (the ACL
    grants topics, so a type may not hide under another's topic); with `now`, it may not come
    from the future (its time would run every timer out at once).

    A type known in code decodes to its model. With `announced`, a type known only from an
    announced schema decodes too: the envelope as strictly, `data` against that schema, into an
    AnnouncedData; any other type is an unknown one."""
    try:
        event = _DECODER.validate_json(payload, strict=True)
    except ValidationError as exc:
        event = _decode_not_built_in(payload, exc, topic, announced)
    if topic is not None and topic != f"events/{event.type}/{event.subject}":
        raise InvalidInput(f"an event of type {event.type} about {event.subject} does not belong on topic "
                           f"{topic[:128]!r}", topic=topic)
    if now is not None:  # `emittedtime` is always a wall-clock stamp; `time` may run on a test's clock
        for name, moment, clock in (("time", event.time, now), ("emittedtime", event.emittedtime, utc_now())):
            if moment is not None and moment > clock + MAX_CLOCK_AHEAD:
                raise InvalidInput(f"{name} is {(moment - clock).total_seconds():.0f}s in the future", topic=topic)
    return event


def _decode_not_built_in(payload: bytes, exc: ValidationError, topic: str | None,
                         announced: AnnouncedTypes | None) -> Event:
    first = exc.errors(include_url=False)[0]
    if first["type"] != "union_tag_invalid":
        raise InvalidInput(describe_validation_error(exc), topic=topic) from None
    event_type = first["input"].get("type") if isinstance(first["input"], dict) else None
    if not isinstance(event_type, str) or len(event_type) > 128 or not EVENT_TYPE_PATTERN.fullmatch(event_type):
        raise InvalidInput(f"unknown event type {first['ctx']['tag']!r}: not a dotted lower-case name with a "
                           "major version", topic=topic) from None
    if event_type in ENVELOPES:  # registered in this process: a plugin's type
        return _validate(ENVELOPES[event_type], payload, topic)
    if announced is None or event_type not in announced:
        raise InvalidInput(f"unknown event type {event_type!r}: no service announces it", topic=topic) from None
    event = _validate(_ANNOUNCED_ENVELOPE, payload, topic)
    data = event.data.__pydantic_extra__ or {}
    try:
        _refuse_non_finite(data, "data")
        announced.check(event_type, event.source, data)
    except InvalidInput as invalid:
        raise InvalidInput(invalid.message, topic=topic) from None
    return event


def _validate(envelope: type[Event], payload: bytes, topic: str | None) -> Event:
    try:
        return envelope.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc), topic=topic) from None


def _refuse_non_finite(value: object, path: str) -> None:
    """JSON has no NaN or infinity; a number too large for a float parses as one."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{path}: Input should be a finite number")
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        _refuse_non_finite(child, f"{path}.{key}")


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the first failing field and why, e.g. `data.measurements.0.value: ...`."""
    first = exc.errors(include_url=False)[0]
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if first["type"] == "union_tag_invalid":
        return f"unknown event type {first['ctx']['tag']!r}{more}"
    if first["type"] == "union_tag_not_found":
        return f"type: Field required{more}"
    parts = [str(part) for part in first["loc"] if not str(part).startswith("function-")]
    if parts and parts[0] in EVENT_TYPES:  # the envelope chosen by `type`, not a field
        parts = parts[1:]
    location = ".".join(parts)
    message = _reason(first["type"], first.get("ctx", {}), first["input"]) or first["msg"].removeprefix("Value error, ")
    return f"{location}: {message}{more}" if location else f"{message}{more}"


def _reason(kind: str, context: Mapping[str, Any], value: object) -> str | None:
    """Our words for what UtcTime and SenmlUnit refuse (pydantic-core's name the pattern or the bound)."""
    if kind == "timezone_aware":
        return "time must carry a UTC offset (RFC 3339)"
    if kind == "greater_than_equal" and context.get("ge") == _EPOCH_TEXT:
        return "must not be before 1970"
    if kind == "string_pattern_mismatch" and context.get("pattern") == SENML_UNIT_PATTERN:
        return f"unknown SenML unit {value!r}"
    return None
