"""Topic templates, MQTT filter matching and the strict identifier rules.

Device ids, subjects and service names become topic levels, InfluxDB tags and file
names, so they are validated against one strict pattern before any of that happens.
"""
from __future__ import annotations

import re
from functools import lru_cache

from .errors import InvalidInput

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
EVENT_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:\.[a-z][a-z0-9]*)*\.v[1-9][0-9]{0,2}")

TELEMETRY_FILTER = "devices/+/telemetry"
STATUS_FILTER = "devices/+/status"
EVENTS_FILTER = "events/#"
SCHEMAS_FILTER = "choreo/schemas/#"  # each retained JSON Schema of an event type, per announcing service
SERVICES_PREFIX = "choreo/services/"  # retained manifests, and each service's counters below its manifest
COUNTERS_LEVEL = "counters"


# Ids and event types recur on every message: their checks are cached (bounded, least recently used).
@lru_cache(maxsize=65536)
def _is_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


@lru_cache(maxsize=1024)
def _is_event_type(value: str) -> bool:
    return EVENT_TYPE_PATTERN.fullmatch(value) is not None


def validate_id(value: str, what: str = "device id") -> str:
    """Return `value` if it is a safe identifier, else raise InvalidInput naming the rule."""
    if not isinstance(value, str) or len(value) > 64 or not _is_id(value):  # long junk never enters the cache
        raise InvalidInput(
            f"invalid {what} {value!r}: use 1-64 characters of A-Z a-z 0-9 _ -, "
            "starting with a letter or digit"
        )
    return value


def validate_event_type(value: str) -> str:
    if not isinstance(value, str) or len(value) > 128 or not _is_event_type(value):
        raise InvalidInput(f"invalid event type {value!r}: "
                           "expected dotted lower-case name with a major version, e.g. reading.v1")
    return value


def telemetry_topic(device_id: str) -> str:
    return f"devices/{validate_id(device_id)}/telemetry"


def status_topic(device_id: str) -> str:
    return f"devices/{validate_id(device_id)}/status"


def event_topic(event_type: str, subject: str) -> str:
    return f"events/{validate_event_type(event_type)}/{validate_id(subject, 'subject')}"


def event_filter(event_type: str, subject: str = "+") -> str:
    validate_event_type(event_type)
    if subject != "+":
        validate_id(subject, "subject")
    return f"events/{event_type}/{subject}"


def service_topic(name: str) -> str:
    return f"choreo/services/{validate_id(name, 'service name')}"


def counters_topic(name: str, partition: str | None = None) -> str:
    """Where a service publishes its counters, retained: `choreo/services/{name}/counters`, or for one
    partition or replica `choreo/services/{name}/{partition}/counters`."""
    topic = service_topic(name)
    if partition:
        topic += f"/{validate_id(partition, 'partition')}"
    return f"{topic}/{COUNTERS_LEVEL}"


def is_counters_topic(topic: str) -> bool:
    """Whether a topic under `choreo/services/` carries a service's counters, not its manifest."""
    return topic.startswith(SERVICES_PREFIX) and topic.rsplit("/", 1)[-1] == COUNTERS_LEVEL and topic.count("/") >= 3


def schema_topic(event_type: str, service: str) -> str:
    """Where `service` announces, retained, the JSON Schema of the `data` of `event_type` it emits."""
    return f"choreo/schemas/{validate_event_type(event_type)}/{validate_id(service, 'service name')}"


def schema_topic_levels(topic: str) -> tuple[str, str]:
    """The validated (event type, service) of a `choreo/schemas/{type}/{service}` topic."""
    levels = topic.split("/")
    if len(levels) != 4 or levels[:2] != ["choreo", "schemas"]:
        raise InvalidInput(f"not a schema topic: {topic[:128]!r}: expected choreo/schemas/{{type}}/{{service}}",
                           topic=topic)
    return validate_event_type(levels[2]), validate_id(levels[3], "service name")


def device_id_from_topic(topic: str) -> str:
    """The validated device id of a `devices/{id}/...` topic."""
    levels = topic.split("/")
    if len(levels) != 3 or levels[0] != "devices":
        raise InvalidInput(f"not a device topic: {topic!r}", topic=topic)
    return validate_id(levels[1])


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching with `+` and `#`, including the `$`-topic rule."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2]
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)
