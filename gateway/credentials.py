"""Broker and database accounts: generated secrets and per-device password derivation.

Each device authenticates with its own username (its id) and a password derived
from one fleet secret, so a fleet of thousands needs one secret, not thousands.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from .topics import validate_id

SERVICE_ACCOUNTS = ("admin", "monitor", "ingest", "threshold", "sink")


def device_password(fleet_secret: str, device_id: str) -> str:
    digest = hmac.new(fleet_secret.encode(), validate_id(device_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class Credentials:
    """Generated secrets of one local installation, kept in a file only its owner can read."""

    mqtt: dict[str, str] = field(repr=False)
    fleet_secret: str = field(repr=False)
    influx_admin_password: str = field(repr=False)
    influx_writer_password: str = field(repr=False)

    @classmethod
    def generate(cls) -> "Credentials":
        return cls(
            mqtt={name: secrets.token_urlsafe(24) for name in SERVICE_ACCOUNTS},
            fleet_secret=secrets.token_urlsafe(32),
            influx_admin_password=secrets.token_urlsafe(24),
            influx_writer_password=secrets.token_urlsafe(24),
        )

    @classmethod
    def load_or_create(cls, path: Path) -> "Credentials":
        if path.exists():
            return cls(**json.loads(path.read_text()))
        credentials = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(credentials.__dict__, file)
        return credentials

    def password_file_lines(self, device_ids: list[str]) -> list[str]:
        """`user:password` lines for `mosquitto_passwd -U`, which hashes them in place."""
        lines = [f"{name}:{password}" for name, password in self.mqtt.items()]
        lines += [f"{device}:{device_password(self.fleet_secret, device)}" for device in device_ids]
        return lines
