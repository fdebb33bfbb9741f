"""Broker accounts: admin, monitor and one per declared service, kept across runs."""
from __future__ import annotations

import json
import stat

import pytest

from gateway.credentials import Credentials
from gateway.errors import ConfigError, InvalidInput


def test_the_accounts_are_the_operators_and_the_services_named(tmp_path):
    credentials = Credentials.load_or_create(tmp_path / "credentials.json", ["sink", "shout"])
    assert list(credentials.mqtt) == ["admin", "monitor", "sink", "shout"]
    assert len(set(credentials.mqtt.values())) == 4
    assert [line.split(":")[0] for line in credentials.service_password_file().splitlines()] == list(credentials.mqtt)
    assert stat.S_IMODE((tmp_path / "credentials.json").stat().st_mode) == 0o600


def test_a_service_declared_later_gets_an_account_and_nobody_loses_a_password(tmp_path):
    path = tmp_path / "credentials.json"
    first = Credentials.load_or_create(path, ["sink", "bell"])
    second = Credentials.load_or_create(path, ["sink", "shout"])
    assert list(second.mqtt) == ["admin", "monitor", "sink", "shout"]  # exactly the accounts asked for
    assert {name: second.mqtt[name] for name in ("admin", "monitor", "sink")} == \
        {name: first.mqtt[name] for name in ("admin", "monitor", "sink")}
    assert second.fleet_secret == first.fleet_secret
    again = Credentials.load_or_create(path, ["bell"])  # reinstalled: the file kept its password
    assert again.mqtt["bell"] == first.mqtt["bell"]
    assert set(json.loads(path.read_text())["mqtt"]) == {"admin", "monitor", "sink", "bell", "shout"}


def test_an_account_name_must_be_a_safe_identifier(tmp_path):
    with pytest.raises(InvalidInput, match="invalid service name"):
        Credentials.load_or_create(tmp_path / "credentials.json", ["shout\nuser admin"])


def test_a_device_may_not_take_a_declared_services_client_id(tmp_path):
    credentials = Credentials.load_or_create(tmp_path / "credentials.json", ["shout"])
    with pytest.raises(ConfigError, match="client id of service 'shout'"):
        credentials.device_password_file(["shout-1"])
