"""The `choreo` command's own behaviour (each service's behaviour is tested with the service)."""
import json

import pytest

from gateway.cli import build_parser, main
from gateway.plugins import reactor_entry_points, reactor_names


@pytest.fixture(autouse=True)
def no_settings_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_choreo_reactors_lists_each_installed_reactor_with_what_it_consumes_and_emits(capsys):
    assert main(["reactors", "--format", "json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert sorted(listed) == reactor_names()
    assert listed["climate"] == {
        "name": "climate", "description": "runs a room's fans while a sensor there is too warm",
        "consumes": ["alert.raised.v2", "alert.cleared.v1", "alert.raised.v1"], "emits": ["actuation.requested.v1"],
        "entry_point": "reactors.climate:build"}


def test_choreo_reactors_prints_a_table_by_default(capsys):
    assert main(["reactors"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "DESCRIPTION", "CONSUMES", "EMITS", "ENTRY", "POINT"]
    assert [row.split()[0] for row in rows] == reactor_names()
    assert all(row.endswith(reactor_entry_points()[row.split()[0]]) for row in rows)
    threshold = next(row for row in rows if row.startswith("threshold "))
    assert "reading.v1" in threshold and "alert.cleared.v1, alert.raised.v1" in threshold


def test_choreo_reactor_refuses_an_unknown_name_naming_the_installed_ones(capsys):
    assert main(["reactor", "frost"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"choreo reactor: unknown reactor 'frost'; installed: {', '.join(reactor_names())}")


def test_a_bad_reactor_setting_stops_choreo_reactor_before_it_connects(capsys, monkeypatch):
    monkeypatch.setenv("CHOREO_MQTT_PORT", "1")  # nothing listens there: reaching it would fail differently
    monkeypatch.setenv("CHOREO_REACTORS_DOOR_LIMIT_SECONDS", "-1")
    assert main(["reactor", "door"]) == 2
    assert "CHOREO_REACTORS_DOOR_LIMIT_SECONDS: Input should be greater than 0 (got '-1')" in capsys.readouterr().err


def test_the_reactor_help_names_no_reactor(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reactor", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "choreo reactors lists them" in help_text
    assert not any(name in help_text for name in reactor_names())
