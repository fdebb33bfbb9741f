"""Typed settings from `choreo.toml` and `CHOREO_*` environment variables, validated at start.

Precedence: defaults < choreo.toml (or the file named by CHOREO_CONFIG) < environment.
An environment variable is `CHOREO_<SECTION>_<KEY>`, e.g. `CHOREO_MQTT_PORT=1884`.
"""
from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_core import ErrorDetails

from .errors import ConfigError
from .events import AlertName, MetricName
from .topics import ID_PATTERN

if TYPE_CHECKING:
    from .fleet import Fleet

ENV_PREFIX = "CHOREO_"
DEFAULT_CONFIG_FILE = "choreo.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


def _comma_separated(value: Any) -> Any:
    return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value


class ThresholdRule(_Section):
    """Limits for one metric, optionally only in one site or room; unset limits are not checked."""

    metric: MetricName
    high: float | None = None
    low: float | None = None
    hysteresis: float = Field(default=1.0, ge=0)
    min_duration: float = Field(default=3.0, ge=0, description="seconds beyond a limit before raising")
    site: str | None = None
    room: str | None = None
    kind: str | None = None


class ThresholdSettings(_Section):
    """The default rule (metric, high, low, ...) plus `rules` for other metrics, sites and rooms."""

    metric: MetricName = "temperature"
    high: float | None = 28.0
    low: float | None = None
    hysteresis: float = Field(default=1.0, ge=0)
    min_duration: float = Field(default=3.0, ge=0, description="seconds beyond a limit before raising")
    rules: list[ThresholdRule] = []

    def rule_for(self, metric: str, site: str | None, room: str | None,
                 kind: str | None = None) -> ThresholdRule | None:
        """The most specific rule for a metric of this reading: by room, then site, then device kind, then any."""
        default = _rule(self.metric, self.high, self.low, self.hysteresis, self.min_duration)
        candidates = [rule for rule in (*self.rules, default) if rule.metric == metric
                      and rule.site in (None, site) and rule.room in (None, room) and rule.kind in (None, kind)]
        return max(candidates, key=lambda r: (r.room is not None, r.site is not None, r.kind is not None), default=None)


@lru_cache(maxsize=64)  # built once per set of values, not once per reading
def _rule(metric: str, high: float | None, low: float | None, hysteresis: float, min_duration: float) -> ThresholdRule:
    return ThresholdRule(metric=metric, high=high, low=low, hysteresis=hysteresis, min_duration=min_duration)


class DoorSettings(_Section):
    limit_seconds: float = Field(default=60.0, gt=0, description="open longer than this raises door.open_too_long")


class AvailabilitySettings(_Section):
    silence_seconds: float = Field(default=30.0, gt=0, description="no telemetry this long: device.offline.v1")


class EnergySettings(_Section):
    period_seconds: int = Field(default=3600, ge=1, description="energy.measured.v1 per device per period")


class AnomalySettings(_Section):
    metrics: Annotated[list[str], BeforeValidator(_comma_separated)] = ["temperature", "humidity", "co2", "power"]
    window: int = Field(default=60, ge=5, description="readings in the rolling statistics")
    min_samples: int = Field(default=20, ge=3)
    sigmas: float = Field(default=5.0, gt=0, description="outlier: this many standard deviations from the mean")
    min_spread: float = Field(default=0.5, gt=0, description="floor of the deviation, in the metric's unit")
    stuck_seconds: float = Field(default=120.0, gt=0, description="an unchanged value this long: sensor stuck")

    @model_validator(mode="after")
    def _enough_window(self) -> AnomalySettings:
        if self.min_samples > self.window:
            raise ValueError(f"anomaly.min_samples ({self.min_samples}) must not exceed anomaly.window ({self.window})")
        return self


class SinkSettings(_Section):
    spool_dir: str = Field(default=".choreo/spool", description="where events wait while InfluxDB is unavailable")
    spool_max_bytes: int = Field(default=1 << 30, ge=1 << 20, description="past this the sink stops acknowledging")
    # Empty by default: Mosquitto 2.0.11 does not persist shared subscriptions, so after a broker
    # restart a group drops what is published before a replica subscribes again (a plain one keeps it).
    group: str = Field(default="", pattern=rf"^({ID_PATTERN.pattern})?$",
                       description="shared subscription group for replicas, which split the events; empty: none")


class ReactorsSettings(_Section):
    state_dir: str = Field(default=".choreo/state", description="where reactors checkpoint their state")


class DeviceSettings(_Section):
    """The simulated fleet when no fleet file is given: `count` devices of each of `kinds`."""

    count: int = Field(default=3, ge=1, le=100_000)
    kinds: Annotated[list[str], BeforeValidator(_comma_separated)] = ["temperature"]
    interval: float = Field(default=1.0, gt=0)
    seed: int = 1
    secret: SecretStr | None = Field(default=None, description="derives each device's broker password")


class FleetSettings(_Section):
    file: str | None = Field(default=None, description="fleet description (TOML): sites, rooms, devices")


class ServicesSettings(_Section):
    file: str | None = Field(default=None, description="services declared for participants in any language (TOML)")


class ClimateSettings(_Section):
    alert: AlertName = "temperature.high"
    source: str = Field(default="reactor/threshold", description="only alerts from this source count")
    actuators: Annotated[list[str], BeforeValidator(_comma_separated)] = ["fan"]


class Settings(_Section):
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    threshold: ThresholdSettings = ThresholdSettings()
    climate: ClimateSettings = ClimateSettings()
    door: DoorSettings = DoorSettings()
    availability: AvailabilitySettings = AvailabilitySettings()
    energy: EnergySettings = EnergySettings()
    anomaly: AnomalySettings = AnomalySettings()
    reactors: ReactorsSettings = ReactorsSettings()
    sink: SinkSettings = SinkSettings()
    devices: DeviceSettings = DeviceSettings()
    fleet: FleetSettings = FleetSettings()
    services: ServicesSettings = ServicesSettings()

    @model_validator(mode="after")
    def _password_needs_username(self) -> Settings:
        if self.mqtt.password is not None and not self.mqtt.username:
            raise ValueError("mqtt.password is set but mqtt.username is not")
        return self


SECTIONS = tuple(Settings.model_fields)


def load_settings(env: Mapping[str, str] | None = None, path: str | os.PathLike | None = None) -> Settings:
    """Read, merge and validate settings; ConfigError names the bad setting and where it came from."""
    env = os.environ if env is None else env
    file_values, origin = _read_file(path or env.get(ENV_PREFIX + "CONFIG"))
    merged: dict[str, dict[str, Any]] = {section: dict(file_values.get(section, {})) for section in SECTIONS}
    unknown_sections = set(file_values) - set(SECTIONS)
    if unknown_sections:
        raise ConfigError(f"{origin}: unknown section [{sorted(unknown_sections)[0]}]; known: {', '.join(SECTIONS)}")
    sources = {(s, k): f"{origin} [{s}] {k}" for s in SECTIONS for k in merged[s]}
    for name, value in env.items():
        key = _env_key(name)
        if key:
            merged[key[0]][key[1]] = value
            sources[key] = name
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources)) from None


def _env_key(name: str) -> tuple[str, str] | None:
    if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
        return None
    rest = name[len(ENV_PREFIX):].lower()
    for section in SECTIONS:
        if rest.startswith(section + "_"):
            return section, rest[len(section) + 1:]
    return None


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


def _describe(exc: ValidationError, sources: dict[tuple[str, str], str]) -> str:
    return "invalid settings: " + "; ".join(_describe_one(error, sources) for error in exc.errors(include_url=False))


def _describe_one(error: ErrorDetails, sources: dict[tuple[str, str], str]) -> str:
    loc = tuple(str(part) for part in error["loc"])
    where = sources.get((loc[0], loc[1]), ".".join(loc)) if len(loc) >= 2 else ".".join(loc) or "settings"
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
