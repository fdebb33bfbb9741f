"""An AsyncAPI 3.0 document of the choreography, generated from the service specs and the event models.

Each event type is a channel `events/{type}/{subject}` carrying one message: the
CloudEvents envelope whose `data` is that type's pydantic model. Each service
receives the types it consumes and sends the types it emits.
"""
from __future__ import annotations

from typing import Any

from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .events import CONTENT_TYPE, EVENT_TYPES, Event, EventData
from .manifest import VERSION, ServiceSpec

SCHEMAS = "#/components/schemas/"


def asyncapi_document(specs: list[ServiceSpec]) -> dict[str, Any]:
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "choreo: MQTT device-event choreography",
            "version": VERSION,
            "description": "Facts as CloudEvents 1.0 (structured JSON mode) on events/{type}/{subject}; "
                           "services react to facts and emit their own.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": {event_type: _channel(event_type) for event_type in EVENT_TYPES},
        "operations": _operations(specs),
        "components": {"messages": _messages(), "schemas": _schemas()},
    }


def _channel(event_type: str) -> dict[str, Any]:
    return {
        "address": f"events/{event_type}/{{subject}}",
        "title": event_type,
        "parameters": {"subject": {"description": "the device the fact is about"}},
        "messages": {event_type: {"$ref": f"#/components/messages/{event_type}"}},
    }


def _operations(specs: list[ServiceSpec]) -> dict[str, Any]:
    operations = {}
    for spec in specs:
        consumed = EVENT_TYPES if "*" in spec.consumes else spec.consumes
        for action, event_types in (("receive", consumed), ("send", spec.emits)):
            for event_type in event_types:
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


def _envelope_name(event_type: str) -> str:
    return "CloudEvent_" + event_type.replace(".", "_")
