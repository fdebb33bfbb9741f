"""Typed settings from `choreo.toml` and `CHOREO_*` environment variables, validated at start.

Precedence: defaults < choreo.toml (or the file named by CHOREO_CONFIG) < environment.
An environment variable is `CHOREO_<SECTION>_<KEY>`, e.g. `CHOREO_MQTT_PORT=1884`.

Each reactor's own settings are its own model, owned by its module, read from `[reactors.NAME]`
and from `CHOREO_REACTORS_<NAME>_<KEY>` (NAME upper-cased, `-` as `_`; the longest installed name
that fits wins), and validated when the reactor is built: `settings.reactor(NAME, Model)`.
"""
from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from .errors import ConfigError
from .plugins import reactor_names
from .topics import ID_PATTERN

if TYPE_CHECKING:
    from .fleet import Fleet

ENV_PREFIX = "CHOREO_"
REACTOR_ENV_PREFIX = ENV_PREFIX + "REACTORS_"
DEFAULT_CONFIG_FILE = "choreo.toml"
M = TypeVar("M", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReactorSettingsModel(_Section):
    """A base for a reactor's own settings: frozen (a reload replaces them), unknown keys refused."""


class MqttSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = Field(default=None, pattern=rf"^{ID_PATTERN.pattern}$")
    keepalive: int = Field(default=30, ge=5, le=3600)
    session_expiry: int = Field(default=3600, ge=0, description="seconds the broker keeps a session")
    queue_size: int = Field(default=10_000, ge=1, description="QoS 0 messages queued before new ones are dropped")
    receive_maximum: int = Field(default=1000, ge=1, le=65535, description="unacknowledged QoS 1 deliveries in flight")
    gather: float = Field(default=0.004, ge=0, le=0.1,
                          description="seconds ingest and reactors let a stream's messages gather before "
                                      "reading them: one wake-up per burst, not per message")
    tls_ca: str | None = Field(default=None, description="CA certificate file: connect with TLS, verifying the broker")
    tls_cert: str | None = Field(default=None, description="client certificate file, for brokers that require one")
    tls_key: str | None = Field(default=None, description="the client certificate's key file")


class InfluxSettings(_Section):
    url: str = Field(default="http://127.0.0.1:8086", pattern=r"^https?://[^\s/]+(/.*)?$")
    api: Literal["v1", "v2"] = Field(default="v1",
                                     description="v1: /write (1.x, and 2.x/3.x compatibility); v2: /api/v2/write")
    org: str | None = Field(default=None, description="v2: the organisation")
    bucket: str | None = Field(default=None, description="v2: the bucket (default: database)")
    database: str = Field(default="choreo", pattern=rf"^{ID_PATTERN.pattern}$")
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = Field(default=None, description="API token (InfluxDB 2.x/3.x v1-compatibility API)")
    batch_size: int = Field(default=5000, ge=1, le=65_535, description="also the sink's MQTT receive maximum")
    flush_interval: float = Field(default=1.0, gt=0, le=60)
    timeout: float = Field(default=10.0, gt=0)


def comma_separated(value: Any) -> Any:
    """`a,b,c` from an environment variable as a list; any other value as it is."""
    return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value


CommaSeparated = Annotated[list[str], BeforeValidator(comma_separated)]
"""A list of strings, which an environment variable gives as `a,b,c`."""


class SinkSettings(_Section):
    spool_dir: str = Field(default=".choreo/spool", description="where events wait while InfluxDB is unavailable")
    spool_max_bytes: int = Field(default=1 << 30, ge=1 << 20, description="past this the sink stops acknowledging")
    # Empty by default: Mosquitto 2.0.11 does not persist shared subscriptions, so after a broker
    # restart a group drops what is published before a replica subscribes again (a plain one keeps it).
    group: str = Field(default="", pattern=rf"^({ID_PATTERN.pattern})?$",
                       description="shared subscription group for replicas, which split the events; empty: none")


class ReactorsSettings(_Section):
    state_dir: str = Field(default=".choreo/state", description="where reactors checkpoint their state")


class ReactorSection(_Section):
    """One reactor's settings as written, and where each came from; its own model validates them."""

    values: dict[str, Any] = Field(default={}, repr=False)  # may hold a plugin's secrets
    sources: dict[str, str] = {}  # key -> `CHOREO_REACTORS_NAME_KEY` or `choreo.toml [reactors.NAME] key`


class DeviceSettings(_Section):
    """The simulated fleet when no fleet file is given: `count` devices of each of `kinds`."""

    count: int = Field(default=3, ge=1, le=100_000)
    kinds: CommaSeparated = ["temperature"]
    interval: float = Field(default=1.0, gt=0)
    seed: int = 1
    secret: SecretStr | None = Field(default=None, description="derives each device's broker password")


class FleetSettings(_Section):
    file: str | None = Field(default=None, description="fleet description (TOML): sites, rooms, devices")


BUDGET_KEY_PATTERN = re.compile(rf"(device|kind|site):{ID_PATTERN.pattern}")


def _json_text(value: Any) -> Any:
    """A table given in an environment variable is JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            example = '{"device:ID": {"rate": 10, "burst": 50}}'
            raise ValueError(f"expected a JSON object, e.g. {example}: {exc}") from None
    return value


class BudgetSettings(_Section):
    """One device's admission budget at ingest: a token bucket."""

    rate: float = Field(gt=0, le=1_000_000, description="messages per second, sustained")
    burst: float = Field(ge=1, le=1_000_000, description="messages at once after a quiet spell")


class IngestSettings(_Section):
    state_dir: str = Field(default=".choreo/state",
                           description="where ingest keeps the documents it decodes others by (Homie's $description)")
    budget_headroom: float = Field(default=5.0, ge=1, le=1000,
                                   description="a fleet device's rate: this many times its readings per second")
    budget_burst: float = Field(default=20.0, ge=1, le=1_000_000, description="a device's messages at once, at least")
    # What piles up for a device while ingest is away (a restart, a network cut) arrives at once when it
    # is back, and must not be shed: a burst of this many seconds at the device's rate lets it through.
    budget_burst_seconds: float = Field(default=60.0, ge=0, le=86_400,
                                        description="a device's burst: this many seconds at its rate")
    budget_unknown_rate: float = Field(default=5.0, gt=0, le=1_000_000,
                                       description="messages per second of a device the fleet does not describe")
    throttle_report_seconds: float = Field(default=10.0, ge=1, le=3600,
                                           description="at most one device.throttled.v1 per device per period")
    budgets: Annotated[dict[str, BudgetSettings], BeforeValidator(_json_text)] = Field(
        default={}, description="device:ID, kind:KIND or site:SITE -> {rate, burst}; the first that fits wins")

    @field_validator("budgets")
    @classmethod
    def _budget_keys(cls, budgets: dict[str, BudgetSettings]) -> dict[str, BudgetSettings]:
        for key in budgets:
            if not BUDGET_KEY_PATTERN.fullmatch(key):
                raise ValueError(f"budget {key!r}: name it device:ID, kind:KIND or site:SITE")
        return budgets


class ServicesSettings(_Section):
    file: str | None = Field(default=None, description="services declared for participants in any language (TOML)")


class Settings(_Section):
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    reactors: ReactorsSettings = ReactorsSettings()
    sink: SinkSettings = SinkSettings()
    devices: DeviceSettings = DeviceSettings()
    fleet: FleetSettings = FleetSettings()
    services: ServicesSettings = ServicesSettings()
    ingest: IngestSettings = IngestSettings()
    reactor_sections: dict[str, ReactorSection] = {}  # by reactor name, as written; see reactor()

    @model_validator(mode="after")
    def _password_needs_username(self) -> Settings:
        if self.mqtt.password is not None and not self.mqtt.username:
            raise ValueError("mqtt.password is set but mqtt.username is not")
        return self

    def reactor(self, name: str, model: type[M]) -> M:
        """Reactor NAME's own settings ([reactors.NAME], CHOREO_REACTORS_<NAME>_<KEY>), validated by its model.

        ConfigError names each bad setting where it was set, never echoing a secret.
        """
        section = self.reactor_sections.get(name, ReactorSection())
        _refuse_unknown_keys(name, section, model)
        try:
            return model.model_validate(section.values)
        except ValidationError as exc:
            sources: dict[tuple[str, ...], str] = {
                ("reactors", name, key): source for key, source in section.sources.items()}
            raise ConfigError(_describe(exc, sources, within=("reactors", name))) from None


SECTIONS = tuple(name for name in Settings.model_fields if name != "reactor_sections")  # choreo.toml's top level


def _refuse_unknown_keys(name: str, section: ReactorSection, model: type[BaseModel]) -> None:
    known = set(model.model_fields) | {field.alias for field in model.model_fields.values() if field.alias}
    unknown = sorted(set(section.values) - known)
    if unknown:
        where = section.sources.get(unknown[0], f"reactors.{name}.{unknown[0]}")
        raise ConfigError(f"invalid settings: {where}: unknown setting; "
                          f"known: {', '.join(sorted(model.model_fields)) or 'none'}")


def load_settings(env: Mapping[str, str] | None = None, path: str | os.PathLike | None = None) -> Settings:
    """Read, merge and validate settings; ConfigError names the bad setting and where it came from.

    Reactors' own sections are only checked to belong to an installed reactor here: each reactor's
    model validates its section when the reactor is built (Settings.reactor).
    """
    env = os.environ if env is None else env
    file_values, origin = _read_file(path or env.get(ENV_PREFIX + "CONFIG"))
    written = _Written(reactor_names())
    written.add_file(file_values, origin)
    written.add_environment(env)
    try:
        return Settings.model_validate(written.as_settings())
    except ValidationError as exc:
        raise ConfigError(_describe(exc, written.sources)) from None


class _Written:
    """Settings as written in choreo.toml and the environment, and where each one was written."""

    def __init__(self, installed: list[str]) -> None:
        self.installed = installed  # the reactors' names
        self.sections: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        self.reactors: dict[str, dict[str, Any]] = {}
        self.sources: dict[tuple[str, ...], str] = {}  # ("mqtt", "port") or ("reactors", NAME, KEY) -> where

    def add_file(self, file_values: dict[str, Any], origin: str) -> None:
        for section, table in file_values.items():
            self._check_section(section, table, origin)
            if section == "reactors":
                table = self._add_reactor_tables(table, origin)
            for key, value in table.items():
                self._set((section, key), value, f"{origin} [{section}] {key}")

    def add_environment(self, env: Mapping[str, str]) -> None:
        for variable, value in env.items():
            if not variable.startswith(ENV_PREFIX) or variable == ENV_PREFIX + "CONFIG":
                continue
            location: tuple[str, ...] | None = _section_key(variable)
            if location is None and variable.startswith(REACTOR_ENV_PREFIX):
                location = self._reactor_key(variable)
            if location is None:
                self._refuse_old_reactor_variable(variable)
            else:
                self._set(location, value, variable)

    def as_settings(self) -> dict[str, Any]:
        reactor_sections = {
            name: ReactorSection(values=values, sources={key: self.sources[("reactors", name, key)] for key in values})
            for name, values in self.reactors.items()}
        return {**self.sections, "reactor_sections": reactor_sections}

    def _set(self, location: tuple[str, ...], value: Any, source: str) -> None:
        if location[0] == "reactors" and len(location) == 3:
            self.reactors.setdefault(location[1], {})[location[2]] = value
        else:
            self.sections[location[0]][location[1]] = value
        self.sources[location] = source

    def _check_section(self, section: str, table: Any, origin: str) -> None:
        if section in self.installed and section not in SECTIONS:
            raise ConfigError(f"{origin} [{section}]: reactor settings moved: write [reactors.{section}]")
        if section not in SECTIONS:
            raise ConfigError(f"{origin}: unknown section [{section}]; known: {', '.join(SECTIONS)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: {section} must be a section, [{section}]")

    def _add_reactor_tables(self, table: dict[str, Any], origin: str) -> dict[str, Any]:
        """Take the reactors' own tables, [reactors.NAME], out of [reactors]; return the rest."""
        rest = {}
        for name, value in table.items():
            if not isinstance(value, dict) or name in ReactorsSettings.model_fields:
                rest[name] = value
                continue
            if name not in self.installed:
                raise ConfigError(f"{origin} [reactors.{name}]: no installed reactor is named {name!r}; "
                                  f"installed: {', '.join(self.installed) or 'none'}")
            for key, item in value.items():
                self._set(("reactors", name, key), item, f"{origin} [reactors.{name}] {key}")
        return rest

    def _reactor_key(self, variable: str) -> tuple[str, str, str]:
        """CHOREO_REACTORS_<NAME>_<KEY>: the longest installed reactor name that fits."""
        rest = variable[len(REACTOR_ENV_PREFIX):].upper()
        fitting = [name for name in self.installed if rest.startswith(_env_name(name) + "_")]
        if not fitting:
            raise ConfigError(f"{variable}: names no installed reactor ({REACTOR_ENV_PREFIX}<NAME>_<KEY>; installed: "
                              f"{', '.join(self.installed) or 'none'}) nor a [reactors] setting "
                              f"({', '.join(ReactorsSettings.model_fields)})")
        name = max(fitting, key=len)
        return "reactors", name, rest[len(_env_name(name)) + 1:].lower()

    def _refuse_old_reactor_variable(self, variable: str) -> None:
        rest = variable[len(ENV_PREFIX):].upper()
        if any(rest.startswith(_env_name(name) + "_") for name in self.installed):
            raise ConfigError(f"{variable}: reactor settings moved: write {REACTOR_ENV_PREFIX}{rest}")


def _section_key(variable: str) -> tuple[str, str] | None:
    """CHOREO_<SECTION>_<KEY> for the gateway's own sections (a reactor's own settings are not among them)."""
    rest = variable[len(ENV_PREFIX):].lower()
    for section in SECTIONS:
        if rest.startswith(section + "_"):
            key = rest[len(section) + 1:]
            return None if section == "reactors" and key not in ReactorsSettings.model_fields else (section, key)
    return None


def _env_name(reactor: str) -> str:
    return reactor.upper().replace("-", "_")


def _read_file(path: str | os.PathLike[str] | None) -> tuple[dict[str, Any], str]:
    explicit = path is not None
    file = Path(DEFAULT_CONFIG_FILE if path is None else path)
    if not file.exists():
        if explicit:
            raise ConfigError(f"settings file {str(file)!r} does not exist (from CHOREO_CONFIG)")
        return {}, str(file)
    try:
        return tomllib.loads(file.read_text()), str(file)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None


def _describe(exc: ValidationError, sources: Mapping[tuple[str, ...], str], within: tuple[str, ...] = ()) -> str:
    """`within`: where the validated model sits in the settings, e.g. ("reactors", "threshold")."""
    errors = exc.errors(include_url=False)
    return "invalid settings: " + "; ".join(_describe_one(error, sources, within) for error in errors)


def _describe_one(error: ErrorDetails, sources: Mapping[tuple[str, ...], str], within: tuple[str, ...]) -> str:
    loc = within + tuple(str(part) for part in error["loc"])
    setting = next((loc[:n] for n in range(len(loc), 0, -1) if loc[:n] in sources), None)
    where = sources[setting] if setting else ".".join(loc) or "settings"
    if setting and loc[:2] == ("ingest", "budgets") and len(loc) > len(setting):
        where += f" ({'.'.join(loc[len(setting):])})"  # which budget and which of its fields
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown setting"
    message = error["msg"].removeprefix("Value error, ")
    secret = any(word in part for part in loc for word in ("password", "secret", "token"))
    if isinstance(error["input"], (str, int, float)) and not secret:
        message += f" (got {error['input']!r})"
    return f"{where}: {message}"


def load_fleet(settings: Settings) -> Fleet:
    """The fleet file if one is set, else the quick fleet of the [devices] settings."""
    from .fleet import Fleet

    if settings.fleet.file:
        return Fleet.load(settings.fleet.file)
    devices = settings.devices
    return Fleet.quick(devices.count, devices.kinds, devices.interval, devices.seed)
