"""The compatibility gate: `choreo contract check` and `make test` refuse a breaking change to a recorded type."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import BaseModel, Field

from gateway import cli
from gateway.contract import SCHEMA_DIR, changes, check, code_schemas, recorded_schemas, update
from gateway.contract import recorded as recorded_module
from gateway.events import BUILT_IN_TYPES, AlertName, EventData, Located, MetricName
from gateway.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


class Door(BaseModel):
    door: str = Field(pattern="^[a-z]+$", max_length=16)
    open: bool
    angle: float = Field(default=0, ge=0, le=90)
    mode: str = Field(default="auto", json_schema_extra={"enum": ["auto", "manual"]})


def schema(model: type[BaseModel]) -> dict:
    return model.model_json_schema(mode="validation")


def kinds(old: type[BaseModel], new: type[BaseModel]) -> dict[str, str]:
    return {f"{c.path} {c.what}": c.kind for c in changes(schema(old), schema(new))}


def recorded_copy(tmp_path: Path) -> Path:
    """The recorded schemas, plus any type still waiting to be recorded (another change's business)."""
    copy = shutil.copytree(SCHEMA_DIR, tmp_path / "schemas")
    update(code_schemas(load_settings({})), copy)
    return copy


def test_the_code_matches_the_recorded_schemas():
    verdict = check(code_schemas(), recorded_schemas())
    assert verdict.passed, "\n".join(verdict.lines())


def test_a_new_optional_field_is_additive_and_passes():
    class WithColour(Door):
        colour: str | None = None

    found = changes(schema(Door), schema(WithColour))
    assert [(c.path, c.kind) for c in found] == [("data.colour", "additive")]
    assert check({"door.opened.v1": schema(WithColour)}, {"door.opened.v1": schema(Door)}).passed


@pytest.mark.parametrize("change, path, what", [
    ({"drop": "angle"}, "data.angle", "field removed"),
    ({"door": (int, ...)}, "data.door", "type changed from string to integer"),
    ({"angle": (float, ...)}, "data.angle", "field made required"),
    ({"new": (str, ...)}, "data.new", "new required field"),
    ({"angle": (float, Field(default=0, ge=0, le=45))}, "data.angle", "maximum changed from 90 to 45"),
    ({"door": (str, Field(pattern="^[a-z]{2,}$", max_length=16))}, "data.door", "pattern changed"),
    ({"door": (str, Field(pattern="^[a-z]+$", max_length=8))}, "data.door", "maxLength changed from 16 to 8"),
    ({"mode": (str, Field(default="auto", json_schema_extra={"enum": ["auto"]}))}, "data.mode",
     "values narrowed: ['manual'] no longer allowed"),
])
def test_breaking_changes_name_the_field(change, path, what):
    from pydantic import create_model

    fields = {name: (info.annotation, info) for name, info in Door.model_fields.items() if name != change.get("drop")}
    fields.update({k: v for k, v in change.items() if k != "drop"})
    changed = create_model("Door", **fields)
    breaking = [c for c in changes(schema(Door), schema(changed)) if c.breaking]
    assert [(c.path, c.what[:len(what)]) for c in breaking] == [(path, what)]


def test_relaxing_is_compatible():
    class Relaxed(BaseModel):
        door: str = Field(max_length=32)  # pattern gone, longer
        open: bool | None = None  # no longer required, and null accepted
        angle: float = Field(default=0, ge=-90, le=180)
        mode: str = Field(default="auto", json_schema_extra={"enum": ["auto", "manual", "off"]})

    found = changes(schema(Door), schema(Relaxed))
    assert found and not [c for c in found if c.breaking], found


class AlertRaisedWithoutDuration(Located):
    """alert.raised.v1 as a careless edit would leave it: `above_seconds` removed."""

    event_type: ClassVar[str] = "alert.raised.v1"
    alert: AlertName
    metric: MetricName
    value: float
    limit: float
    unit: str


def test_removing_a_field_from_a_v1_model_fails_the_check_naming_type_and_field(monkeypatch, tmp_path, capsys):
    recorded = recorded_copy(tmp_path)
    monkeypatch.setattr(recorded_module, "BUILT_IN_TYPES",
                        {**BUILT_IN_TYPES, "alert.raised.v1": AlertRaisedWithoutDuration})
    assert cli.main(["contract", "check", "--dir", str(recorded)]) == 1
    assert "alert.raised.v1: data.above_seconds: field removed: breaking" in capsys.readouterr().err
    before = (recorded / "alert.raised.v1.json").read_text()
    assert cli.main(["contract", "check", "--dir", str(recorded), "--update"]) == 1  # never recorded
    assert (recorded / "alert.raised.v1.json").read_text() == before


def test_an_added_optional_field_passes_and_update_records_it(monkeypatch, tmp_path, capsys):
    class AlertRaisedWithNote(BUILT_IN_TYPES["alert.raised.v1"]):  # type: ignore[misc, valid-type]
        note: str | None = None

    recorded = recorded_copy(tmp_path)
    monkeypatch.setattr(recorded_module, "BUILT_IN_TYPES", {**BUILT_IN_TYPES, "alert.raised.v1": AlertRaisedWithNote})
    assert cli.main(["contract", "check", "--dir", str(recorded)]) == 0
    assert "alert.raised.v1: data.note: new optional field: additive, compatible" in capsys.readouterr().out
    assert cli.main(["contract", "check", "--dir", str(recorded), "--update"]) == 0
    assert "note" in json.loads((recorded / "alert.raised.v1.json").read_text())["properties"]


def test_a_type_not_yet_recorded_fails_and_says_how_to_record_it(tmp_path, capsys):
    class DoorOpenedV1(EventData):
        event_type: ClassVar[str] = "door.opened.v1"
        door: str

    current = {"door.opened.v1": schema(DoorOpenedV1)}
    assert not check(current, {}).passed
    assert check(current, {}).lines() == [
        "door.opened.v1: no recorded schema; record it with `choreo contract check --update`"]
    verdict, written = update(current, tmp_path)
    assert written == [tmp_path / "door.opened.v1.json"] and check(current, recorded_schemas(tmp_path)).passed


def test_what_a_services_file_announces_is_checked_too(tmp_path):
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "alert.shouted.v1.json").write_text(json.dumps(
        {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}))
    (tmp_path / "services.toml").write_text(
        '[[service]]\nname = "shout"\nconsumes = ["alert.raised.v1"]\nemits = ["alert.shouted.v1"]\n'
        '[service.schemas]\n"alert.shouted.v1" = "schemas/alert.shouted.v1.json"\n')
    current = code_schemas(load_settings({"CHOREO_SERVICES_FILE": str(tmp_path / "services.toml")}))
    assert "alert.shouted.v1" in current and "alert.raised.v2" in current
    louder = {"type": "object", "properties": {"text": {"type": "integer"}}, "required": ["text"]}
    verdict = check({"alert.shouted.v1": louder}, {"alert.shouted.v1": current["alert.shouted.v1"]})
    assert verdict.lines()[0].startswith("alert.shouted.v1: data.text: type changed from string to integer")


def test_make_test_runs_the_check_first_and_stops_on_a_breaking_change(tmp_path):
    recorded = recorded_copy(tmp_path)
    stored = json.loads((recorded / "reading.v1.json").read_text())
    stored["properties"]["firmware"] = {"type": "string"}  # the code no longer has this field
    (recorded / "reading.v1.json").write_text(json.dumps(stored))
    # -o: the test does not reinstall the environment it runs in
    result = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "test",
                             f"CONTRACT_ARGS=--dir {recorded}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "reading.v1: data.firmware: field removed: breaking" in result.stderr
    assert "bin/ruff" not in result.stdout and "bin/pytest" not in result.stdout  # stopped before the rest


def test_the_examples_of_evolving_events_run(tmp_path, monkeypatch, capsys):
    page = (ROOT / "docs" / "evolving-events.md").read_text()
    [python] = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    exec(compile(python, "docs/evolving-events.md", "exec"), {"__name__": "evolving_events_example"})
    [shell] = re.findall(r"```sh\n(.*?)```", page, re.DOTALL)
    commands = [line.split("#")[0].split() for line in shell.splitlines() if line.strip()]
    recorded = recorded_copy(tmp_path)
    for command in commands:
        assert command[0] == "choreo"
        assert cli.main([*command[1:], "--dir", str(recorded)]) == 0, capsys.readouterr().err


def test_what_a_service_announces_on_the_broker_is_checked_against_the_records():
    from gateway.announced import AnnouncedSchemas
    from gateway.contract import check_announced

    recorded = recorded_schemas()
    careless = dict(recorded["alert.raised.v1"], required=[*recorded["alert.raised.v1"]["required"], "site"])
    announced = AnnouncedSchemas()
    announced.add("alert.raised.v1", "threshold", recorded["alert.raised.v1"])
    announced.add("alert.raised.v1", "loud", careless)  # a plugin's edit of a published type
    announced.add("door.opened.v1", "doors", {"type": "object"})  # not recorded here: its announcer's contract
    verdicts = check_announced(
        [(t, a.service, a.schema) for t in announced.types() for a in announced.announcements(t)], recorded)
    assert sorted(verdicts) == ["loud", "threshold"] and verdicts["threshold"].passed
    assert verdicts["loud"].lines()[0].startswith("alert.raised.v1: data.site: field made required: breaking")
