"""An AsyncAPI 3.0 document of the choreography, generated from the service specs and the event models.

Each event type is a channel `events/{type}/{subject}` carrying one message: the
CloudEvents envelope whose `data` is that type's pydantic model or, for a type known only
from a schema a service announced (gateway/announced.py), that announced schema. Each
service receives the types it consumes and sends the types it emits.
"""
from __future__ import annotations

from typing import Any

from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .announced import REFERENCES, AnnouncedSchemas, Announcement
from .events import CONTENT_TYPE, EVENT_TYPES, Event, EventData
from .manifest import VERSION, ServiceSpec

SCHEMAS = "#/components/schemas/"


def asyncapi_document(specs: list[ServiceSpec], announced: AnnouncedSchemas | None = None) -> dict[str, Any]:
    """The document of `specs`, with the types known in code and those `announced` (if given) only."""
    outside = _outside(announced) if announced is not None else {}
    documented = [*EVENT_TYPES, *outside]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "choreo: MQTT device-event choreography",
            "version": VERSION,
            "description": "Facts as CloudEvents 1.0 (structured JSON mode) on events/{type}/{subject}; "
                           "services react to facts and emit their own.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": {event_type: _channel(event_type) for event_type in documented},
        "operations": _operations(specs, documented),
        "components": {"messages": {**_messages(), **_announced_messages(outside, announced)},
                       "schemas": {**_schemas(), **_announced_schemas(outside)}},
    }


def _outside(announced: AnnouncedSchemas) -> dict[str, Announcement]:
    """Each type known only from an announcement, with the one documented: the first announcer's."""
    return {t: announced.announcements(t)[0] for t in announced.types() if t not in EVENT_TYPES}


def _channel(event_type: str) -> dict[str, Any]:
    return {
        "address": f"events/{event_type}/{{subject}}",
        "title": event_type,
        "parameters": {"subject": {"description": "the device the fact is about"}},
        "messages": {event_type: {"$ref": f"#/components/messages/{event_type}"}},
    }


def _operations(specs: list[ServiceSpec], documented: list[str]) -> dict[str, Any]:
    """What each service receives and sends, of the documented types (a channel for each)."""
    operations = {}
    for spec in specs:
        consumed = documented if "*" in spec.consumes else spec.consumes
        for action, event_types in (("receive", consumed), ("send", spec.emits)):
            for event_type in (t for t in event_types if t in documented):
                operations[f"{spec.name}.{action}.{event_type}"] = {
                    "action": action,
                    "summary": f"{spec.name} {'consumes' if action == 'receive' else 'emits'} {event_type}",
                    "channel": {"$ref": f"#/channels/{event_type}"},
                    "messages": [{"$ref": f"#/channels/{event_type}/messages/{event_type}"}],
                }
    return operations


def _messages() -> dict[str, Any]:
    return {
        event_type: {
            "name": event_type,
            "title": event_type,
            "summary": (model.__doc__ or event_type).strip().splitlines()[0],
            "contentType": CONTENT_TYPE,
            "payload": {"$ref": f"{SCHEMAS}{_envelope_name(event_type)}"},
        }
        for event_type, model in EVENT_TYPES.items()
    }


def _schemas() -> dict[str, Any]:
    models: list[tuple[type[EventData], JsonSchemaMode]] = [(model, "validation") for model in EVENT_TYPES.values()]
    names, definitions = models_json_schema(models, ref_template=SCHEMAS + "{model}")
    schemas: dict[str, Any] = dict(definitions["$defs"])
    envelope = Event.model_json_schema(ref_template=SCHEMAS + "{model}")
    envelope.pop("$defs", None)
    for event_type, model in EVENT_TYPES.items():
        properties = {**envelope["properties"], "type": {"const": event_type, "type": "string"},
                      "data": names[(model, "validation")]}
        schemas[_envelope_name(event_type)] = {
            "type": "object",
            "title": f"CloudEvent {event_type}",
            "required": envelope["required"],
            "properties": properties,
            "additionalProperties": False,
        }
    return schemas


def _announced_messages(outside: dict[str, Announcement], announced: AnnouncedSchemas | None) -> dict[str, Any]:
    if announced is None:
        return {}
    conflicts = announced.conflicts
    messages = {}
    for event_type, documented in outside.items():
        services = ", ".join(a.service for a in announced.announcements(event_type))
        conflict = f" (conflicting schemas: this is {documented.service}'s)" if event_type in conflicts else ""
        messages[event_type] = {
            "name": event_type,
            "title": event_type,
            "summary": f"{event_type}, announced by {services}{conflict}",
            "contentType": CONTENT_TYPE,
            "payload": {"$ref": f"{SCHEMAS}{_envelope_name(event_type)}"},
        }
    return messages


def _announced_schemas(outside: dict[str, Announcement]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    envelope = Event.model_json_schema(ref_template=SCHEMAS + "{model}")
    for event_type, announcement in outside.items():
        name = "Announced_" + event_type.replace(".", "_")
        schemas[name] = _rebased(announcement.schema, SCHEMAS + name)
        schemas[_envelope_name(event_type)] = {
            "type": "object",
            "title": f"CloudEvent {event_type}",
            "required": envelope["required"],
            "properties": {**envelope["properties"], "type": {"const": event_type, "type": "string"},
                           "data": {"$ref": SCHEMAS + name}},
            "additionalProperties": False,
        }
    return schemas


def _rebased(schema: dict[str, Any], base: str) -> dict[str, Any]:
    """An announced schema placed at `base` in the document: its local references (`#/...`) point
    below `base`; its own `$schema` and `$id` go (the document is its resource now)."""
    def rebase(node: Any) -> Any:
        if isinstance(node, list):
            return [rebase(child) for child in node]
        if not isinstance(node, dict):
            return node
        return {key: base + value[1:] if key in REFERENCES and isinstance(value, str) else rebase(value)
                for key, value in node.items()}
    return {key: value for key, value in rebase(schema).items() if key not in ("$schema", "$id")}


def _envelope_name(event_type: str) -> str:
    return "CloudEvent_" + event_type.replace(".", "_")
