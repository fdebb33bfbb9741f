"""The AsyncAPI document, checked by the official parser (@asyncapi/parser), not by us."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.asyncapi import asyncapi_document
from gateway.cli import service_specs
from gateway.events import EVENT_TYPES
from gateway.settings import load_settings

VALIDATOR = Path(__file__).resolve().parent.parent / "tools" / "asyncapi" / "validate.mjs"


def validate(document: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document))
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is not installed: run `make setup`"
    return subprocess.run([node, str(VALIDATOR), str(path)], cwd=VALIDATOR.parent, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def document() -> dict:
    return asyncapi_document(service_specs(load_settings({})))


def test_the_official_parser_accepts_the_document(document, tmp_path):
    result = validate(document, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid AsyncAPI 3.0.0" in result.stdout


def test_the_official_parser_would_catch_a_broken_document(document, tmp_path):
    broken = json.loads(json.dumps(document))
    broken["operations"]["threshold.send.alert.raised.v1"]["channel"] = {"$ref": "#/channels/no-such-channel"}
    assert validate(broken, tmp_path).returncode == 1


def test_every_event_type_and_every_service_is_described(document):
    assert set(document["channels"]) == set(EVENT_TYPES)
    operations = document["operations"]
    for name in ("ingest.send.reading.v1", "threshold.receive.reading.v1", "threshold.send.alert.raised.v1",
                 "climate.send.actuation.requested.v1", "door.send.alert.raised.v1", "energy.send.energy.measured.v1",
                 "availability.send.device.offline.v1", "anomaly.send.alert.cleared.v1",
                 "sink.receive.energy.measured.v1"):
        assert name in operations, name
    reading = document["components"]["schemas"]["CloudEvent_reading_v1"]
    assert reading["properties"]["data"] == {"$ref": "#/components/schemas/ReadingV1"}
    assert "measurements" in document["components"]["schemas"]["ReadingV1"]["properties"]


ANNOUNCED = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://example.com/happened.json",
             "type": "object", "required": ["count"], "additionalProperties": False,
             "properties": {"count": {"type": "integer"}, "where": {"$ref": "#/$defs/Place"}},
             "$defs": {"Place": {"type": "object", "properties": {"room": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def announced_document() -> dict:
    from gateway.announced import AnnouncedSchemas
    from gateway.manifest import ServiceSpec
    from gateway.transport import Message

    schemas = AnnouncedSchemas()
    schemas.offer(Message("choreo/schemas/x.happened.v1/somesvc", json.dumps(ANNOUNCED).encode()))
    schemas.offer(Message("choreo/schemas/y.seen.v1/one", b'{"type": "object", "required": ["a"]}'))
    schemas.offer(Message("choreo/schemas/y.seen.v1/two", b'{"type": "object"}'))  # a conflict
    somesvc = ServiceSpec("somesvc", ("events/alert.raised.v1/+",), ("alert.raised.v1",),
                          ("x.happened.v1", "undocumented.v1"))
    return asyncapi_document([*service_specs(load_settings({})), somesvc], schemas)


def test_an_announced_type_is_documented_with_its_announced_schema(announced_document, tmp_path):
    result = validate(announced_document, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(announced_document["channels"]) == {*EVENT_TYPES, "x.happened.v1", "y.seen.v1"}
    schemas = announced_document["components"]["schemas"]
    envelope = schemas["CloudEvent_x_happened_v1"]
    assert envelope["properties"]["data"] == {"$ref": "#/components/schemas/Announced_x_happened_v1"}
    data = schemas["Announced_x_happened_v1"]
    assert "$schema" not in data and "$id" not in data and data["required"] == ["count"]
    assert data["properties"]["where"] == {"$ref": "#/components/schemas/Announced_x_happened_v1/$defs/Place"}
    operations = announced_document["operations"]
    assert "somesvc.send.x.happened.v1" in operations and "sink.receive.x.happened.v1" in operations
    assert "somesvc.send.undocumented.v1" not in operations  # neither in code nor announced: no channel
    summary = announced_document["components"]["messages"]["y.seen.v1"]["summary"]
    assert summary == "y.seen.v1, announced by one, two (conflicting schemas: this is one's)"


def test_the_parser_follows_the_rebased_references(announced_document, tmp_path):
    broken = json.loads(json.dumps(announced_document))
    where = broken["components"]["schemas"]["Announced_x_happened_v1"]["properties"]["where"]
    where["$ref"] = where["$ref"].replace("Place", "Nowhere")
    assert validate(broken, tmp_path).returncode == 1
