"""Durable reactor state in SQLite: each checkpoint is one transaction that writes only what changed.

The database runs in WAL mode with `synchronous=FULL`, so a committed checkpoint survives
a crash of the process or the machine, and a checkpoint that did not commit leaves the
previous one intact. Without a path the database lives in memory (tests, the harness).
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (source TEXT PRIMARY KEY, sequence INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS timers (key TEXT, name TEXT, deadline TEXT NOT NULL, cause TEXT NOT NULL,
                                   PRIMARY KEY (key, name));
CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class Changes:
    """What one checkpoint writes: changed rows, and rows to delete (value None)."""

    states: dict[str, str] = field(default_factory=dict)  # key -> JSON
    seen: list[str] = field(default_factory=list)  # ids handled since the last checkpoint
    seen_window: int = 20_000
    sources: dict[str, int] = field(default_factory=dict)
    timers: dict[tuple[str, str], tuple[str, str] | None] = field(default_factory=dict)  # -> (deadline, cause JSON)
    outbox: dict[str, tuple[str, bytes] | None] = field(default_factory=dict)  # fact id -> (topic, payload)
    sequence: int = 0

    def __bool__(self) -> bool:
        return bool(self.states or self.seen or self.sources or self.timers or self.outbox)


class StateStore:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(f"reactor state {path}: {exc}; move the file away to start empty") from None

    def load(self) -> dict[str, Any]:
        db = self.db
        meta = dict(db.execute("SELECT name, value FROM meta"))
        return {
            "states": {key: json.loads(value) for key, value in db.execute("SELECT key, value FROM state")},
            "seen": [row[0] for row in db.execute("SELECT id FROM seen ORDER BY n")],
            "sources": dict(db.execute("SELECT source, sequence FROM sources")),
            "timers": [(key, name, deadline, tuple(json.loads(cause)))
                       for key, name, deadline, cause in db.execute("SELECT key, name, deadline, cause FROM timers")],
            "outbox": {fact_id: (topic, bytes(payload)) for fact_id, topic, payload in db.execute("SELECT * FROM outbox")},
            "sequence": int(meta.get("sequence", 0)),
        }

    def commit(self, changes: Changes) -> None:
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)", changes.states.items())
            db.executemany("INSERT INTO seen (id) VALUES (?)", ((i,) for i in changes.seen))
            if changes.seen:
                db.execute("DELETE FROM seen WHERE n <= (SELECT MAX(n) FROM seen) - ?", (changes.seen_window,))
            db.executemany("INSERT OR REPLACE INTO sources VALUES (?, ?)", changes.sources.items())
            for (key, name), timer in changes.timers.items():
                if timer is None:
                    db.execute("DELETE FROM timers WHERE key = ? AND name = ?", (key, name))
                else:
                    db.execute("INSERT OR REPLACE INTO timers VALUES (?, ?, ?, ?)", (key, name, *timer))
            for fact_id, entry in changes.outbox.items():
                if entry is None:
                    db.execute("DELETE FROM outbox WHERE id = ?", (fact_id,))
                else:
                    db.execute("INSERT OR REPLACE INTO outbox VALUES (?, ?, ?)", (fact_id, *entry))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('sequence', ?)", (str(changes.sequence),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
