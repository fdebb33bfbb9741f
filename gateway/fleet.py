"""The fleet description: sites, rooms and the devices in them, from a TOML file.

The simulators build their devices from it; ingest uses it as the registry that
places a device in its site and room; the climate reactor finds a room's
actuators in it. One file, validated at start, with a clear error naming the
offending entry.

    seed = 7
    interval = 1.0
    [faults]
    duplicate = 0.01
    [[sites]]
    id = "hq"
    [[sites.rooms]]
    id = "lab"
    devices = [{ kind = "temperature", count = 2, base = 24 }, { kind = "fan" },
               { kind = "fan", profile = "tasmota", native = "sonoff-lab" }]

A group may name the device convention it speaks (`profile`, docs/devices.md) and, for one
device, its own name in that convention (`native`: Zigbee2MQTT friendly_name, Tasmota topic,
Shelly device id, Homie device id); without `native` a device's native name is its id.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError
from .topics import ID_PATTERN

DEVICE_KINDS = ("temperature", "co2", "motion", "door", "power", "fan", "heater", "valve")
ACTUATOR_KINDS = ("fan", "heater", "valve")
Id = Annotated[str, Field(pattern=rf"^{ID_PATTERN.pattern}$")]
Probability = Annotated[float, Field(ge=0, le=1)]
ProfileName = Literal["native", "zigbee2mqtt", "tasmota", "shelly", "homie"]
ZIGBEE2MQTT_ACCOUNT = "zigbee2mqtt"  # one Zigbee2MQTT bridge client publishes for all its devices
# A Shelly account writes `{account}/...`: it must not be one of the topic prefixes in use.
RESERVED_ACCOUNTS = frozenset({"devices", "events", "choreo", "homie", "tele", "stat", "cmnd", "homeassistant"})
HOMIE_ID = re.compile(r"[a-z0-9][a-z0-9-]*")  # Homie 5, "Topic IDs": lowercase a-z, 0-9 and hyphens


class Faults(BaseModel):
    """Fault modes; probabilities per message unless noted. All off by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dropout: Probability = 0.0  # vanish without a clean close (the broker sends the last will) ...
    dropout_seconds: float = Field(default=5.0, gt=0)  # ... and come back after this long
    duplicate: Probability = 0.0  # publish the same message (same seq) twice
    out_of_order: Probability = 0.0  # hold a message back and send it after the next one
    malformed: Probability = 0.0  # publish a payload that is not valid telemetry
    clock_skew: Probability = 0.0  # per device, at start: its clock is off by clock_skew_seconds
    clock_skew_seconds: float = 600.0
    stuck: Probability = 0.0  # per device, at start: the sensor repeats its first value


class DeviceGroup(BaseModel):
    """`count` devices of one kind; further keys are the kind's simulation parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str
    count: int = Field(default=1, ge=1, le=100_000)
    interval: float | None = Field(default=None, gt=0)
    faults: Faults | None = None
    profile: ProfileName = "native"
    native: str | None = None

    @model_validator(mode="after")
    def _known_kind(self) -> DeviceGroup:
        if self.kind not in DEVICE_KINDS:
            raise ValueError(f"unknown device kind {self.kind!r}; known: {', '.join(DEVICE_KINDS)}")
        return self

    @model_validator(mode="after")
    def _valid_native(self) -> DeviceGroup:
        if self.native is None:
            return self
        if self.profile == "native":
            raise ValueError(f"native name {self.native[:64]!r} needs a profile: a native device's name is its id")
        if self.count != 1:
            raise ValueError(f"native name {self.native[:64]!r} names one device: count must be 1")
        check_native_name(self.profile, self.native)
        return self

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Room(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Id
    devices: list[DeviceGroup] = []


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Id
    rooms: list[Room] = Field(min_length=1)


@dataclass(frozen=True)
class DeviceSpec:
    """One device of the fleet, with everything resolved."""

    id: str
    kind: str
    site: str
    room: str
    interval: float
    faults: Faults
    params: dict[str, Any] = field(default_factory=dict)
    profile: str = "native"
    native: str = ""  # the device's name in its convention; its id when not set

    def __post_init__(self) -> None:
        if not self.native:
            object.__setattr__(self, "native", self.id)

    @property
    def account(self) -> str:
        """The MQTT username this device connects with (one bridge account for all Zigbee2MQTT devices)."""
        if self.profile == "native":
            return self.id
        return ZIGBEE2MQTT_ACCOUNT if self.profile == "zigbee2mqtt" else self.native


def check_native_name(profile: str, native: str) -> str:
    """`native` if it can be a topic level and a broker username in `profile`, else ValueError naming it."""
    if not ID_PATTERN.fullmatch(native):
        raise ValueError(f"native name {native[:64]!r} must be 1-64 letters, digits, '_' or '-' and start with "
                         "a letter or digit (no '/', '+', '#' or spaces: it becomes a topic level and a username)")
    if profile == "homie" and not HOMIE_ID.fullmatch(native):
        raise ValueError(f"native name {native!r}: a Homie device id has only lowercase a-z, 0-9 and '-'")
    return native


class Fleet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int = 1
    interval: float = Field(default=1.0, gt=0)
    jitter: float = Field(default=0.1, ge=0, le=1)
    day_length: float = Field(default=86_400.0, gt=0, description="seconds per simulated day")
    faults: Faults = Faults()
    sites: list[Site] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_device_ids(self) -> Fleet:
        seen: set[str] = set()
        for spec in self.devices():
            if not ID_PATTERN.fullmatch(spec.id):
                raise ValueError(f"device id {spec.id!r} would be invalid: shorten the room id")
            if spec.id in seen:
                raise ValueError(f"device id {spec.id!r} occurs twice: room ids must be unique across sites")
            seen.add(spec.id)
        self._unique_accounts()
        return self

    def _unique_accounts(self) -> None:
        natives: set[tuple[str, str]] = set()
        owners: dict[str, str] = {}
        for spec in self.devices():
            check_native_name(spec.profile, spec.native)
            if (spec.profile, spec.native) in natives:
                raise ValueError(f"native name {spec.native!r} occurs twice in profile {spec.profile!r}")
            natives.add((spec.profile, spec.native))
            if spec.account in RESERVED_ACCOUNTS or (spec.account == ZIGBEE2MQTT_ACCOUNT) != (
                    spec.profile == "zigbee2mqtt"):
                raise ValueError(f"device {spec.id!r} would connect as {spec.account!r}, a name reserved for "
                                 "a topic prefix or the Zigbee2MQTT bridge: rename it")
            owner = owners.setdefault(spec.account, spec.id)
            if owner != spec.id and spec.profile != "zigbee2mqtt":
                raise ValueError(f"device {spec.id!r} would connect as {spec.account!r}, the account of {owner!r}")

    def accounts(self) -> list[str]:
        """The distinct broker accounts of the fleet's devices (see DeviceSpec.account)."""
        return sorted({spec.account for spec in self.devices()})

    def devices(self) -> list[DeviceSpec]:
        """Every device; ids are `{room}-{kind}-{n}`, numbered per room and kind."""
        specs = []
        for site in self.sites:
            for room in site.rooms:
                numbers: dict[str, int] = {}
                for group in room.devices:
                    for _ in range(group.count):
                        numbers[group.kind] = numbers.get(group.kind, 0) + 1
                        specs.append(DeviceSpec(
                            id=f"{room.id}-{group.kind}-{numbers[group.kind]}", kind=group.kind, site=site.id,
                            room=room.id, interval=group.interval or self.interval,
                            faults=group.faults or self.faults, params=group.params,
                            profile=group.profile, native=group.native or "",
                        ))
        return specs

    @classmethod
    def quick(cls, count: int, kinds: list[str], interval: float, seed: int = 1) -> Fleet:
        """One site, one room, `count` devices of each kind: what `choreo devices --count` runs."""
        groups = [{"kind": kind, "count": count} for kind in kinds]
        return cls._validated({"seed": seed, "interval": interval,
                               "sites": [{"id": "local", "rooms": [{"id": "room1", "devices": groups}]}]}, "options")

    @classmethod
    def load(cls, path: str | Path) -> Fleet:
        file = Path(path)
        try:
            document = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"fleet file {str(file)!r} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"fleet file {file}: not valid TOML: {exc}") from None
        return cls._validated(document, f"fleet file {file}")

    @classmethod
    def _validated(cls, document: dict, origin: str) -> Fleet:
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{origin}: {where + ': ' if where else ''}{message}") from None


class Registry:
    """Lookups over a fleet: where a device is and what it is, and which actuators serve a room."""

    def __init__(self, fleet: Fleet | None) -> None:
        self._devices = {spec.id: spec for spec in fleet.devices()} if fleet else {}
        self._natives = {(spec.profile, spec.native): spec for spec in self._devices.values()}

    def by_native(self, profile: str, native: str) -> DeviceSpec | None:
        """The device that `profile` calls `native`, if the fleet has it."""
        return self._natives.get((profile, native))

    def speaking(self, profile: str) -> list[DeviceSpec]:
        """The devices of the fleet that speak `profile`."""
        return [spec for spec in self._devices.values() if spec.profile == profile]

    def profiles(self) -> set[str]:
        """The profiles the fleet's devices speak."""
        return {spec.profile for spec in self._devices.values()}

    def get(self, device_id: str) -> DeviceSpec | None:
        return self._devices.get(device_id)

    def describe(self, device_id: str) -> dict[str, str]:
        """The device's site, room and kind, for the `Located` fields of its facts ({} if unknown)."""
        spec = self._devices.get(device_id)
        return {"site": spec.site, "room": spec.room, "kind": spec.kind} if spec else {}

    def actuators(self, site: str, room: str, kinds: tuple[str, ...]) -> list[str]:
        return [s.id for s in self._devices.values() if s.site == site and s.room == room and s.kind in kinds]
