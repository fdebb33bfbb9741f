"""Durable reactor state: one JSON snapshot per reactor, replaced atomically.

Write to a temporary file, fsync it, rename it over the old snapshot, fsync the
folder: after a crash the snapshot is the old one or the new one, never a mix.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import ConfigError


class StateStore:
    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: keep nothing (tests, stateless replicas)

    def load(self) -> dict[str, Any]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"reactor state {self.path} is unreadable ({exc}); move it away to start empty") from None

    def save(self, snapshot: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w") as file:
            json.dump(snapshot, file, separators=(",", ":"))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
