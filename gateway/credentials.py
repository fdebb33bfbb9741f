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
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import ConfigError
from .topics import validate_id

RESERVED_CLIENT_PREFIXES = ("demo",)  # client ids of tools: demo-monitor
OPERATORS = ("admin", "monitor")  # the accounts of mosquitto/acl; every other one is a declared service's
MOSQUITTO_ITERATIONS = 101


def mosquitto_password_hash(password: str, salt: bytes | None = None) -> str:
    """Mosquitto 2's `$7$` format: PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt, base64."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, MOSQUITTO_ITERATIONS)
    return f"$7${MOSQUITTO_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def device_password(fleet_secret: str, device_id: str) -> str:
    digest = hmac.new(fleet_secret.encode(), validate_id(device_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read; it is created with that mode, never widened later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def write_public(path: Path, text: str) -> None:
    """Write a file that holds no secret, readable by every user (the broker may run as its own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o644)


@dataclass(frozen=True)
class Credentials:
    """Generated secrets of one local installation, kept in a file only its owner can read."""

    mqtt: dict[str, str] = field(repr=False)
    fleet_secret: str = field(repr=False)
    influx_admin_password: str = field(repr=False)
    influx_writer_password: str = field(repr=False)
    influx_reader_password: str = field(repr=False, default="")

    @classmethod
    def generate(cls, accounts: Iterable[str] = OPERATORS) -> Credentials:
        return cls(
            mqtt=_passwords(accounts),
            fleet_secret=secrets.token_urlsafe(32),
            influx_admin_password=secrets.token_urlsafe(24),
            influx_writer_password=secrets.token_urlsafe(24),
            influx_reader_password=secrets.token_urlsafe(24),
        )

    @classmethod
    def load_or_create(cls, path: Path, services: Iterable[str] = ()) -> Credentials:
        """The broker accounts `admin`, `monitor` and one per service name, with the other secrets.

        Accounts missing from an existing file are added to it; the file keeps accounts no longer asked
        for (a service installed again gets its password back), but the result holds exactly these.
        """
        accounts = list(dict.fromkeys((*OPERATORS, *(validate_id(name, "service name") for name in services))))
        if path.exists():
            stored = cls(**json.loads(path.read_text()))
            missing = [name for name in accounts if name not in stored.mqtt]
            credentials = stored
            if missing or not stored.influx_reader_password:  # accounts added since this file was written
                reader_password = stored.influx_reader_password or secrets.token_urlsafe(24)
                credentials = replace(stored, mqtt={**stored.mqtt, **_passwords(missing)},
                                      influx_reader_password=reader_password)
                write_private(path, json.dumps(credentials.__dict__))
        else:
            credentials = cls.generate(accounts)
            write_private(path, json.dumps(credentials.__dict__))
        return replace(credentials, mqtt={name: credentials.mqtt[name] for name in accounts})

    def service_password_file(self) -> str:
        """A Mosquitto password file (hashed) for the service accounts, admin and monitor."""
        return _password_file(self.mqtt)

    def device_password_file(self, device_ids: list[str]) -> str:
        """A Mosquitto password file (hashed) for the given devices; each password derives from the fleet secret."""
        for device in device_ids:
            reserved = next((name for name in (*self.mqtt, *RESERVED_CLIENT_PREFIXES)
                             if device == name or device.startswith(f"{name}-")), None)
            if reserved:
                # On the device listener the username is the client id: it must not be a service's (`sink`,
                # `sink-2`, `threshold-0-of-2`, `demo-monitor`, ...), or the device would take its session over.
                raise ConfigError(f"device id {device!r} is, or starts like, the client id of service {reserved!r}; "
                                  "rename the device")
        return _password_file({device: device_password(self.fleet_secret, device) for device in device_ids})


def _passwords(accounts: Iterable[str]) -> dict[str, str]:
    return {name: secrets.token_urlsafe(24) for name in accounts}


def _password_file(accounts: dict[str, str]) -> str:
    return "".join(f"{name}:{mosquitto_password_hash(password)}\n" for name, password in accounts.items())
