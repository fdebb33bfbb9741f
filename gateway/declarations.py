"""Who takes part in the choreography and what each consumes and emits: one declaration per service.

Three sources make one list: the gateway's own services (ingest, sink), every installed reactor
(built-in or plugin, gateway/plugins.py) and the services declared in a file (`services.file`)
for participants written in any language. The broker's service accounts and its ACL
(gateway/acl.py) are generated from this list, so an account may publish exactly what its
service declares. A services file (TOML):

    [[service]]
    name = "shout"
    description = "repeats alerts louder"
    consumes = ["alert.raised.v1"]
    emits = ["alert.shouted.v1"]
    [service.schemas]   # the JSON Schema of the data of each type the gateway does not define
    "alert.shouted.v1" = "schemas/alert.shouted.v1.json"   # relative to this file
"""
from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .credentials import OPERATORS
from .errors import ConfigError, InvalidInput
from .events import EVENT_TYPES
from .manifest import ServiceSpec
from .topics import EVENTS_FILTER, event_filter, validate_event_type, validate_id

if TYPE_CHECKING:
    from .settings import Settings

Kind = Literal["gateway", "reactor", "external"]
EVERY_TYPE = "*"  # the sink consumes every type
KIND_LABELS = {"gateway": "a gateway service", "reactor": "an installed reactor"}


@dataclass(frozen=True)
class Declaration:
    """One service: its name (also its broker account), what it consumes and emits, and the JSON Schema of
    each new type it emits (file-declared services; Python services carry theirs in their models).

    `reads` are the MQTT filters it subscribes to; by default `events/{type}/+` per consumed type.
    `writes` are topics outside `events/` it may publish on (the bridge: its devices' native commands).
    Names, types and filters are checked here, so every declaration renders into a safe ACL.
    """

    name: str
    description: str
    consumes: tuple[str, ...]
    emits: tuple[str, ...]
    schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    reads: tuple[str, ...] = ()
    kind: Kind = "external"
    writes: tuple[str, ...] = ()
    origin: str = ""  # where it was declared: a module, an entry point, a file

    def __post_init__(self) -> None:
        _check(validate_id, self.name, "service name")
        for event_type in (*self.emits, *(t for t in self.consumes if t != EVERY_TYPE)):
            _check(validate_event_type, event_type)
        if not self.reads:
            object.__setattr__(self, "reads", tuple(_filter_of(t) for t in self.consumes))
        if any(not topic_filter or any(c.isspace() for c in topic_filter) for topic_filter in self.reads):
            raise ConfigError(f"service {self.name!r}: a read filter is empty or has white space: {self.reads}")
        if any(not topic or any(c.isspace() or c in "+#" for c in topic) for topic in self.writes):
            raise ConfigError(f"service {self.name!r}: a written topic is empty, a filter or has white space: "
                              f"{self.writes}")

    @property
    def label(self) -> str:
        """Where it comes from, for people: `an installed reactor`, `declared in services.toml`."""
        return f"declared in {self.origin or 'a services file'}" if self.kind == "external" else KIND_LABELS[self.kind]


def declarations(settings: Settings) -> list[Declaration]:
    """Every service of the choreography, sorted by name; ConfigError for a bad services file, a plugin
    that fails to build, or a name declared twice."""
    found = [*gateway_declarations(), bridge_declaration(settings), *reactor_declarations(settings)]
    if settings.services.file:
        found += load_services_file(Path(settings.services.file))
    return _unique(found)


def gateway_declarations() -> list[Declaration]:
    from .ingest.service import SPEC as INGEST
    from .sink.service import SPEC as SINK

    return [_from_spec(INGEST, "turns device payloads into canonical facts", "gateway", "gateway.ingest"),
            _from_spec(SINK, "stores every event in InfluxDB", "gateway", "gateway.sink")]


def bridge_declaration(settings: Settings) -> Declaration:
    """The actuation bridge; it may write the native command topics of the fleet's profile actuators."""
    from .bridge import SPEC, command_topics
    from .settings import load_fleet

    writes = tuple(command_topics(load_fleet(settings).devices()))
    return replace(_from_spec(SPEC, "turns actuation requests for profile devices into their native commands",
                              "gateway", "gateway.bridge"), writes=writes)


def reactor_declarations(settings: Settings) -> list[Declaration]:
    from .plugins import build_reactors
    from .reactor import spec_of

    return [_from_spec(spec_of(reactor), reactor.description, "reactor", "choreo.reactors")
            for reactor in build_reactors(settings)]


def _from_spec(spec: ServiceSpec, description: str, kind: Kind, origin: str) -> Declaration:
    reads = tuple(_unshared(topic_filter) for topic_filter in spec.reads)
    return Declaration(spec.name, description, spec.consumes, spec.emits, reads=reads, kind=kind, origin=origin)


def _unshared(topic_filter: str) -> str:
    """`$share/GROUP/events/x.v1/+` -> `events/x.v1/+`: the broker checks access on the filter itself."""
    return topic_filter.split("/", 2)[2] if topic_filter.startswith("$share/") else topic_filter


def _filter_of(event_type: str) -> str:
    return EVENTS_FILTER if event_type == EVERY_TYPE else event_filter(event_type)


def _unique(found: list[Declaration]) -> list[Declaration]:
    by_name: dict[str, Declaration] = {}
    for declaration in found:
        if declaration.name in OPERATORS:
            raise ConfigError(f"service name {declaration.name!r} ({declaration.label}) is the broker's "
                              f"{declaration.name} account; choose another name")
        if (first := by_name.setdefault(declaration.name, declaration)) is not declaration:
            raise ConfigError(f"service name {declaration.name!r} is declared twice: {first.label} and "
                              f"{declaration.label}; each service needs a name of its own")
    return sorted(by_name.values(), key=lambda declaration: declaration.name)


# -- the services file ---------------------------------------------------------------------------------------------


class _ServiceEntry(BaseModel):
    """One `[[service]]` table as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    consumes: list[str] = []
    emits: list[str] = []
    schemas: dict[str, str] = {}

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _valid(validate_id, value, "service name")

    @field_validator("consumes", "emits")
    @classmethod
    def _types(cls, values: list[str]) -> list[str]:
        return [_valid(validate_event_type, value) for value in values]


def load_services_file(path: Path) -> list[Declaration]:
    """The services a TOML file declares; ConfigError names the file, the service and what is wrong."""
    document = _read_toml(path)
    unknown = sorted(set(document) - {"service"})
    if unknown:
        raise ConfigError(f"services file {path}: unknown key {unknown[0]!r}; declare each service in a [[service]] "
                          "table")
    entries = document.get("service", [])
    if not isinstance(entries, list):
        raise ConfigError(f"services file {path}: `service` must be [[service]] tables")
    return _unique([_declaration(path, index, entry) for index, entry in enumerate(entries, start=1)])


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"services file {path}: cannot read it: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"services file {path}: not valid TOML: {exc}") from None


def _declaration(path: Path, index: int, entry: Any) -> Declaration:
    where = f"services file {path}, service #{index}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a [[service]] table")
    if isinstance(entry.get("name"), str):
        where += f" ({entry['name']!r})"
    try:
        service = _ServiceEntry.model_validate(entry)
    except ValidationError as exc:
        raise ConfigError(f"{where}: " + "; ".join(_describe(error) for error in exc.errors())) from None
    schemas = {event_type: _schema(path.parent / file, where, event_type)
               for event_type, file in _checked_schemas(service, where).items()}
    return Declaration(service.name, service.description, tuple(dict.fromkeys(service.consumes)),
                       tuple(sorted(set(service.emits))), schemas, kind="external", origin=str(path))


def _checked_schemas(service: _ServiceEntry, where: str) -> dict[str, str]:
    for event_type, file in service.schemas.items():
        if event_type not in service.emits:
            raise ConfigError(f"{where}: a schema for {event_type!r} ({file}), which it does not emit")
        if event_type in EVENT_TYPES:
            owner = EVENT_TYPES[event_type].__module__
            raise ConfigError(f"{where}: {event_type!r} has a data model in code ({owner}), which owns its schema; "
                              "remove it from [service.schemas]")
    for event_type in service.emits:
        if event_type not in EVENT_TYPES and event_type not in service.schemas:
            raise ConfigError(f"{where}: it emits the new type {event_type!r}: give the JSON Schema of its data "
                              f'in [service.schemas], e.g. "{event_type}" = "schemas/{event_type}.json"')
    return service.schemas


def _schema(file: Path, where: str, event_type: str) -> dict[str, Any]:
    try:
        schema = json.loads(file.read_text())
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the schema of {event_type!r}, {file}: {exc.strerror or exc}") \
            from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: the schema of {event_type!r}, {file}, is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ConfigError(f"{where}: the schema of {event_type!r}, {file}, is not a JSON Schema (a JSON object)")
    return schema


def _describe(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key {location!r} (known: {', '.join(_ServiceEntry.model_fields)})"
    return f"{location}: {error['msg'].removeprefix('Value error, ')}"


def _valid(check: Callable[..., str], value: str, *what: str) -> str:
    """Run a topics.py check inside a pydantic validator, whose errors must be ValueErrors."""
    try:
        return check(value, *what)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def _check(check: Callable[..., str], value: str, *what: str) -> str:
    try:
        return check(value, *what)
    except InvalidInput as exc:
        raise ConfigError(exc.message) from None
