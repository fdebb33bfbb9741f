"""Secrets for docker-compose.yml: the broker's password files and TLS files, and one env file per service.

`choreo secrets` writes them into `.choreo/compose/` (git-ignored; keys, passwords and
tokens in owner-only files); docker-compose.yml mounts and reads them from there.
Nothing secret is in the repo or in the image.
"""
from __future__ import annotations

import secrets
from pathlib import Path

from .certificates import make_tls_files
from .credentials import Credentials, write_private

COMPOSE_DIR = Path(".choreo/compose")
# The fleet the compose `devices` service runs (CHOREO_FLEET_FILE=/app/devices/fleets/demo.toml in the image).
COMPOSE_FLEET = Path(__file__).resolve().parent.parent / "devices" / "fleets" / "demo.toml"
# Names devices reach the broker by: its compose service name, and from the Docker host.
BROKER_HOSTS = ("mosquitto", "localhost", "127.0.0.1")
BROKER_TLS_FILES = ("ca.crt", "server.crt", "server.key")  # ca.key stays in the folder, mounted nowhere
INFLUX_ORG = "choreo"
INFLUX_BUCKET = "choreo"
SERVICES = ("ingest", "threshold", "availability", "climate", "door", "energy", "anomaly", "sink", "monitor")
# Only these talk to InfluxDB. They share the initial all-access token: create narrower
# tokens in InfluxDB 2.x (a write token for the sink, a read token for monitor) for production.
INFLUX_USERS = ("sink", "monitor")


def write_compose_secrets(directory: Path, device_ids: list[str]) -> list[Path]:
    """Write every file docker-compose.yml reads; returns their paths.

    credentials.json, influx-token and the CA are made once and kept, so a second run changes no password, token
    or trust: the password files follow the fleet given, and the server certificate is renewed when due.
    """
    credentials = Credentials.load_or_create(directory / "credentials.json")
    token_file = directory / "influx-token"
    if not token_file.exists():
        write_private(token_file, secrets.token_urlsafe(32))
    token = token_file.read_text()
    files = {
        "passwd-services": credentials.service_password_file(),
        "passwd-devices": credentials.device_password_file(device_ids),
        "influxdb.env": _env({
            "DOCKER_INFLUXDB_INIT_MODE": "setup",
            "DOCKER_INFLUXDB_INIT_USERNAME": "admin",
            "DOCKER_INFLUXDB_INIT_PASSWORD": credentials.influx_admin_password,
            "DOCKER_INFLUXDB_INIT_ORG": INFLUX_ORG,
            "DOCKER_INFLUXDB_INIT_BUCKET": INFLUX_BUCKET,
            "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN": token,
        }),
        "devices.env": _env({"CHOREO_DEVICES_SECRET": credentials.fleet_secret}),
    }
    for service in SERVICES:
        env = {"CHOREO_MQTT_USERNAME": service, "CHOREO_MQTT_PASSWORD": credentials.mqtt[service]}
        if service in INFLUX_USERS:
            env["CHOREO_INFLUX_TOKEN"] = token
        files[f"{service}.env"] = _env(env)
    for name, text in files.items():
        write_private(directory / name, text)
    tls = make_tls_files(directory, BROKER_HOSTS)
    return [directory / name for name in files] + [tls[name] for name in BROKER_TLS_FILES]


def _env(values: dict[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in values.items())
