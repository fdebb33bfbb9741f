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
