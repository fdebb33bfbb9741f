"""What every device convention gives ingest and the bridge: topics, decoding, commands, ACL patterns.

A profile keeps nothing about devices (Shelly numbers its RPC requests, no more); what a convention
needs to remember between messages (Homie's retained `$description` of each device) lives in a
`Memory` that ingest owns and bounds.
"""
from __future__ import annotations

import json
import math
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from ..errors import InvalidInput
from ..events import ActuationRequestedV1, Measurement
from ..ingest.simjson import MAX_PAYLOAD, parse_object

T = TypeVar("T")
MEMORY_LIMIT = 10_000  # devices whose announcements a profile remembers; the oldest is forgotten first


@dataclass(frozen=True, slots=True)
class Report:
    """What one native message says about one device, in the project's terms."""

    native: str  # the device's name in its convention
    measurements: tuple[Measurement, ...] = ()
    state: str | None = None  # an actuator's reported "on" / "off"
    position: float | None = None  # a valve's reported percent open
    online: bool | None = None  # availability: True online, False offline
    announced: str | None = None  # a summary of what the device announced about itself (discovery)
    time: datetime | None = None  # the device's clock, if the message carries one
    kept_out: tuple[str, ...] = ()  # native metrics we do not know, left out of the facts
    sequence: int | None = None  # the device's own message counter (native profile only)
    caused_by: tuple[str, str] | None = None  # (request id, correlation id), if the device names them
    speaks: str | None = None  # the convention of the device announced, when another one announces it
    every_device: bool = False  # the availability of a bridge: it holds for every device the bridge serves


class Memory(OrderedDict[str, Any]):
    """A bounded map of what a profile learned per device; the least recently written is forgotten first."""

    def __init__(self, limit: int = MEMORY_LIMIT, counts: Counter[str] | None = None,
                 counter: str = "forgotten") -> None:
        super().__init__()
        self.limit = limit
        self.counts: Counter[str] = Counter() if counts is None else counts
        self.counter = counter  # counted in `counts` for every device forgotten

    def remember(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)
            self.counts[self.counter] += 1


class Profile:
    """One device convention. Subclasses fill in the class attributes and the methods."""

    name: ClassVar[str]
    subscriptions: ClassVar[tuple[str, ...]]  # the topic filters ingest reads for this convention
    # Those of them whose retained documents decode the others (Homie's $description): ingest keeps them
    # on disk, and asks the broker for their retained messages on every start, not only on its first.
    documents: ClassVar[tuple[str, ...]] = ()
    acl: ClassVar[tuple[str, ...]] = ()  # the broker ACL lines that confine its devices (%u: the account)

    def device_key(self, topic: str) -> str | None:
        """The native name `topic` belongs to, by string operations only; None if not this convention's."""
        raise NotImplementedError

    def decode(self, topic: str, payload: bytes, now: datetime, memory: Memory) -> list[Report]:
        """The reports in one message; InvalidInput (naming the profile, field and reason) if it is malformed."""
        raise NotImplementedError

    def command(self, native: str, request: ActuationRequestedV1) -> list[tuple[str, bytes]]:
        """The native command topic(s) and payload(s) that ask the device for the requested state."""
        raise NotImplementedError

    def bad(self, field: str, reason: str) -> InvalidInput:
        """The rejection of a malformed message: `{profile}: field {field!r}: {reason}`."""
        return InvalidInput(f"{self.name}: field {field[:96]!r}: {reason}"[:400])

    def json_object(self, payload: bytes, limit: int = MAX_PAYLOAD) -> dict:
        try:
            return parse_object(payload, limit)
        except InvalidInput as exc:
            raise InvalidInput(f"{self.name}: {exc.message}") from None

    def number(self, value: object, field: str) -> float:
        """A finite JSON number; a string, a boolean or an object is refused with the field's name."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.bad(field, f"must be a number, got {type(value).__name__} {str(value)[:32]!r}")
        number = float(value) if abs(value) < 1e300 else math.inf
        if not math.isfinite(number):
            raise self.bad(field, "is not a finite number")
        return number

    def choice(self, value: object, choices: Mapping[str, T], field: str, must: str) -> T:
        """`choices[value]` for a JSON string among them; anything else (an object too) is refused: `must`."""
        if not isinstance(value, str) or value not in choices:
            raise self.bad(field, f"{must}, got {str(value)[:32]!r}")
        return choices[value]

    def table(self, value: object, field: str) -> dict:
        """A nested JSON object where the convention puts one."""
        if not isinstance(value, dict):
            raise self.bad(field, f"must be an object, got {type(value).__name__}")
        return value


def as_json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def wanted_on(request: ActuationRequestedV1, profile: str) -> bool:
    """The switch state a request asks for; a profile relay has no position."""
    if request.state is None:
        raise InvalidInput(f"{profile}: a relay takes a state (on/off), not a position")
    return request.state == "on"
