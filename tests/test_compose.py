"""docker-compose.yml cannot run here (no Docker engine): it is kept correct by reading it, and its broker config runs on a real Mosquitto."""
from __future__ import annotations

import getpass
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.cli import build_parser
from gateway.compose import COMPOSE_DIR, write_compose_secrets
from gateway.credentials import Credentials, device_password
from gateway.localstack import find_binary, free_ports, wait_until
from reactors import REACTORS
from tests.helpers import connack

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())


def local_paths(service: dict) -> list[str]:
    paths = [volume.split(":")[0] for volume in service.get("volumes", []) if volume.startswith("./")]
    return paths + list(service.get("env_file", []))


def test_every_referenced_file_exists_or_is_written_by_choreo_secrets(tmp_path):
    generated = {path.name for path in write_compose_secrets(tmp_path, ["temp-1"])}
    for name, service in COMPOSE["services"].items():
        for path in local_paths(service):
            relative = Path(path).relative_to(".")
            if relative.parts[:2] == COMPOSE_DIR.parts:
                assert relative.name in generated, f"{name}: {path} is not written by `choreo secrets`"
            else:
                assert (REPO / relative).exists(), f"{name}: {path} does not exist"
    assert (REPO / "Dockerfile").exists()


def test_every_service_command_is_a_real_choreo_command():
    parser = build_parser()
    commands = {name: s["command"] for name, s in COMPOSE["services"].items() if s.get("image", "").startswith("choreo")}
    assert set(commands) == {"sink", "ingest", "devices", *REACTORS}
    for name, command in commands.items():
        parser.parse_args(command)  # exits (fails the test) on an unknown command or option


def test_servers_and_their_configuration():
    assert COMPOSE["services"]["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert COMPOSE["services"]["influxdb"]["image"] == "influxdb:2.7"
    broker_config = (REPO / "mosquitto" / "mosquitto.conf").read_text()
    for line in ("per_listener_settings true", "password_file /mosquitto/secrets/passwd-services",
                 "password_file /mosquitto/secrets/passwd-devices", "acl_file /mosquitto/config/acl",
                 "use_username_as_clientid true", "include_dir /mosquitto/config/conf.d"):
        assert line in broker_config
    devices_listener = broker_config.split("listener 1884")[1]
    assert "passwd-devices" in devices_listener and "use_username_as_clientid true" in devices_listener
    assert COMPOSE["services"]["devices"]["environment"]["CHOREO_MQTT_PORT"] == "1884"


def test_influxdb_is_initialised_with_org_bucket_and_token(tmp_path):
    write_compose_secrets(tmp_path, [])
    env = dict(line.split("=", 1) for line in (tmp_path / "influxdb.env").read_text().splitlines())
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert env["DOCKER_INFLUXDB_INIT_ORG"] and env["DOCKER_INFLUXDB_INIT_BUCKET"] == "choreo"
    sink_env = dict(line.split("=", 1) for line in (tmp_path / "sink.env").read_text().splitlines())
    assert sink_env["CHOREO_INFLUX_TOKEN"] == env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    for service in ("ingest", "threshold", "climate", "devices"):
        assert "CHOREO_INFLUX" not in (tmp_path / f"{service}.env").read_text(), f"{service} needs no InfluxDB access"


def test_no_anonymous_access_in_any_shipped_broker_config():
    for path in (REPO / "mosquitto").rglob("*"):
        if path.is_file():
            for line in path.read_text().splitlines():
                assert not line.strip().startswith("allow_anonymous true"), path


@pytest.mark.integration
def test_the_compose_broker_config_runs_and_each_listener_takes_only_its_own_accounts(tmp_path):
    """The compose file's broker config on a real Mosquitto, with its paths and ports made local."""
    secrets = tmp_path / "secrets"
    write_compose_secrets(secrets, ["dev-a"])
    service_port, device_port = free_ports(2)
    config = (REPO / "mosquitto" / "mosquitto.conf").read_text()
    for compose_path, local in (("/mosquitto/secrets", secrets), ("/mosquitto/config/acl", REPO / "mosquitto" / "acl"),
                                ("/mosquitto/config/conf.d", REPO / "mosquitto" / "conf.d"), ("/mosquitto/data", tmp_path),
                                ("listener 1883 0.0.0.0", f"listener {service_port} 127.0.0.1"),
                                ("listener 1884 0.0.0.0", f"listener {device_port} 127.0.0.1")):
        config = config.replace(compose_path, str(local))
    (tmp_path / "mosquitto.conf").write_text(f"user {getpass.getuser()}\n{config}")
    broker = subprocess.Popen([find_binary("mosquitto"), "-c", str(tmp_path / "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _accepts(device_port), 10, "the compose broker", broker)
        credentials = Credentials.load_or_create(secrets / "credentials.json")
        device = ("dev-a", device_password(credentials.fleet_secret, "dev-a"))
        service = ("sink", credentials.mqtt["sink"])
        assert not connack(service_port, *service).is_failure
        assert not connack(device_port, *device).is_failure
        for port, account in ((service_port, device), (device_port, service), (service_port, (None,)), (device_port, (None,))):
            assert connack(port, *account).is_failure, (port, account[0])
    finally:
        broker.terminate()
        broker.wait(10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False
