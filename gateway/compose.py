"""Secrets for docker-compose.yml: the broker's password files and one env file per service.

`choreo secrets` writes them into `.choreo/compose/` (git-ignored, owner-only files);
docker-compose.yml mounts and reads them from there. Nothing secret is in the repo.
"""
from __future__ import annotations

import secrets
from pathlib import Path

from .credentials import Credentials, write_private

COMPOSE_DIR = Path(".choreo/compose")
INFLUX_ORG = "choreo"
INFLUX_BUCKET = "choreo"
SERVICES = ("ingest", "threshold", "availability", "climate", "door", "energy", "anomaly", "sink", "monitor")
# Only these talk to InfluxDB. They share the initial all-access token: create narrower
# tokens in InfluxDB 2.x (a write token for the sink, a read token for monitor) for production.
INFLUX_USERS = ("sink", "monitor")


def write_compose_secrets(directory: Path, device_ids: list[str]) -> list[Path]:
    """Write every file docker-compose.yml reads; returns their paths."""
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
    return [directory / name for name in files]


def _env(values: dict[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in values.items())
