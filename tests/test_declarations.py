"""Declarations from their three sources: the gateway's services, the installed reactors, a services file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import plugins
from gateway.declarations import (
    Declaration,
    declarations,
    gateway_declarations,
    load_services_file,
    reactor_declarations,
)
from gateway.errors import ConfigError
from gateway.events import ActuationRequestedV1, AlertRaisedV1
from gateway.ingest.service import SPEC as INGEST
from gateway.plugins import build_reactor, reactor_names
from gateway.reactor import Reactor, spec_of
from gateway.settings import load_settings
from gateway.sink.service import SPEC as SINK

SCHEMA = {"type": "object", "properties": {"level": {"type": "string"}}, "required": ["level"]}
SHOUT = """
[[service]]
name = "shout"
description = "repeats alerts louder"
consumes = ["alert.raised.v1"]
emits = ["alert.shouted.v1"]
[service.schemas]
"alert.shouted.v1" = "schemas/alert.shouted.v1.json"
"""


def services_file(folder: Path, text: str = SHOUT, schemas: dict[str, str] | None = None) -> Path:
    """A services file and its schema files (name -> text, relative to the file)."""
    files = {"schemas/alert.shouted.v1.json": json.dumps(SCHEMA)} if schemas is None else schemas
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)
    path = folder / "services.toml"
    path.write_text(text)
    return path


def test_a_services_file_declares_a_service_and_the_schema_of_the_new_type_it_emits(tmp_path):
    path = services_file(tmp_path)
    assert load_services_file(path) == [Declaration(
        "shout", "repeats alerts louder", ("alert.raised.v1",), ("alert.shouted.v1",),
        {"alert.shouted.v1": SCHEMA}, reads=("events/alert.raised.v1/+",), kind="external", origin=str(path))]


def test_a_file_service_emitting_only_known_types_needs_no_schema(tmp_path):
    text = '[[service]]\nname = "bridge"\nconsumes = ["actuation.requested.v1"]\nemits = ["actuator.changed.v1"]\n'
    [bridge] = load_services_file(services_file(tmp_path, text, schemas={}))
    assert bridge.schemas == {} and bridge.emits == ("actuator.changed.v1",) and bridge.description == ""


def test_the_gateway_services_are_declared_from_their_specs():
    ingest, sink = gateway_declarations()
    assert (ingest.name, ingest.consumes, ingest.emits, ingest.kind) == (
        "ingest", ("actuation.requested.v1",), INGEST.emits, "gateway")
    assert ingest.reads[:2] == ("devices/+/telemetry", "devices/+/status")  # then the other profiles' topics
    assert "tele/+/SENSOR" in ingest.reads and ingest.reads[-1] == "events/actuation.requested.v1/+"
    assert (sink.name, sink.consumes, sink.emits) == ("sink", ("*",), SINK.emits)
    assert sink.reads[0] == "events/#"
    assert "event.rejected.v1" in ingest.emits and "event.rejected.v1" in sink.emits


def test_every_installed_reactor_is_declared_as_its_spec_says():
    settings = load_settings({})
    declared = {declaration.name: declaration for declaration in reactor_declarations(settings)}
    assert sorted(declared) == reactor_names() and len(declared) >= 6  # the built-ins at least
    for name, declaration in declared.items():
        spec = spec_of(build_reactor(name, settings))
        assert (declaration.consumes, declaration.emits, declaration.kind) == (spec.consumes, spec.emits, "reactor")
        assert "event.rejected.v1" in declaration.emits
        assert declaration.reads == tuple(f"events/{event_type}/+" for event_type in spec.consumes)


def test_a_shared_reactor_reads_the_filter_behind_its_shared_subscription(monkeypatch):
    bell = Reactor("bell", description="rings on alerts", shared=True)
    bell.on(AlertRaisedV1, emits=[ActuationRequestedV1])(lambda event, ctx: [])
    assert spec_of(bell).reads == ("$share/bell/events/alert.raised.v1/+",)
    monkeypatch.setattr(plugins, "build_reactors", lambda settings: [bell])
    [declaration] = reactor_declarations(load_settings({}))
    assert declaration == Declaration("bell", "rings on alerts", ("alert.raised.v1",),
                                      ("actuation.requested.v1", "event.rejected.v1"),
                                      reads=("events/alert.raised.v1/+",), kind="reactor", origin="choreo.reactors")


def test_declarations_are_the_three_sources_sorted_by_name(tmp_path):
    settings = load_settings({"CHOREO_SERVICES_FILE": str(services_file(tmp_path))})
    declared = declarations(settings)
    assert [d.name for d in declared] == sorted(["bridge", "ingest", "sink", "shout", *reactor_names()])
    assert {d.name: d.kind for d in declared}["shout"] == "external"
    assert [d.name for d in declarations(load_settings({}))] == sorted(["bridge", "ingest", "sink", *reactor_names()])


@pytest.mark.parametrize("name", ["threshold", "sink", "ingest", "admin", "monitor"])
def test_a_file_service_cannot_take_a_name_in_use(tmp_path, name):
    path = services_file(tmp_path, SHOUT.replace('"shout"', f'"{name}"'))
    settings = load_settings({"CHOREO_SERVICES_FILE": str(path)})
    with pytest.raises(ConfigError, match=rf"service name '{name}' (is declared twice|.*is the broker's {name})"):
        declarations(settings)


def test_a_plugin_reactor_cannot_take_a_gateway_services_name(monkeypatch):
    monkeypatch.setattr(plugins, "build_reactors", lambda settings: [Reactor("sink")])
    with pytest.raises(ConfigError, match="'sink' is declared twice: a gateway service and an installed reactor"):
        declarations(load_settings({}))


BAD_FILES = [
    (SHOUT.replace("emits =", "emit ="), None, r"service #1 \('shout'\): unknown key 'emit'"),
    (SHOUT + "[services]\n", None, r"unknown key 'services'; declare each service in a \[\[service\]\] table"),
    ('service = "shout"\n', None, r"`service` must be \[\[service\]\] tables"),
    (SHOUT.replace('"shout"', '"shout loud"'), None, r"name: invalid service name 'shout loud'"),
    (SHOUT.replace('name = "shout"', ''), None, r"service #1: name: Field required"),
    (SHOUT.replace('["alert.raised.v1"]', '["Alert.Raised"]'), None, r"consumes: invalid event type 'Alert.Raised'"),
    (SHOUT.replace('emits = ["alert.shouted.v1"]', 'emits = ["alert.shouted"]'), None,
     r"emits: invalid event type 'alert.shouted'"),
    (SHOUT.split("[service.schemas]")[0], None, r"emits the new type 'alert.shouted.v1': give the JSON Schema"),
    (SHOUT + '"alert.raised.v1" = "schemas/alert.shouted.v1.json"\n', None,
     r"a schema for 'alert.raised.v1' \(schemas/alert.shouted.v1.json\), which it does not emit"),
    (SHOUT.replace('emits = ["alert.shouted.v1"]', 'emits = ["alert.shouted.v1", "alert.raised.v1"]')
     + '"alert.raised.v1" = "schemas/alert.shouted.v1.json"\n', None,
     r"'alert.raised.v1' has a data model in code \(gateway.events\), which owns its schema"),
    (SHOUT, {}, r"cannot read the schema of 'alert.shouted.v1', .*alert.shouted.v1.json: No such file"),
    (SHOUT, {"schemas/alert.shouted.v1.json": "{type: object}"}, r"the schema of 'alert.shouted.v1', .* is not JSON"),
    (SHOUT, {"schemas/alert.shouted.v1.json": "[]"}, r"is not a JSON Schema \(a JSON object\)"),
    (SHOUT + SHOUT.replace("[service.schemas]", "[service.schemas]\n"), None,
     r"service name 'shout' is declared twice: declared in .*services.toml and declared in"),
    ("[[service]\n", None, r"services.toml: not valid TOML"),
]


@pytest.mark.parametrize("text, schemas, message", BAD_FILES)
def test_a_bad_services_file_is_refused_naming_the_file_the_service_and_the_fault(tmp_path, text, schemas, message):
    path = services_file(tmp_path, text, schemas)
    with pytest.raises(ConfigError, match=message) as raised:
        load_services_file(path)
    assert raised.value.message.startswith(f"services file {path}") or "declared twice" in raised.value.message


def test_a_missing_services_file_is_named(tmp_path):
    settings = load_settings({"CHOREO_SERVICES_FILE": str(tmp_path / "nowhere.toml")})
    with pytest.raises(ConfigError, match=r"services file .*nowhere.toml: cannot read it: No such file"):
        declarations(settings)


def test_a_declaration_refuses_what_would_not_render_into_a_safe_acl():
    with pytest.raises(ConfigError, match="invalid service name"):
        Declaration("a\nuser admin", "", (), ())
    with pytest.raises(ConfigError, match="invalid event type"):
        Declaration("ok", "", (), ("x/#",))
    with pytest.raises(ConfigError, match="white space"):
        Declaration("ok", "", (), (), reads=("events/# \ntopic readwrite #",))
