"""Durable reactor state in SQLite: each checkpoint is one transaction that writes only what changed.

The database runs in WAL mode with `synchronous=FULL`, so a committed checkpoint survives
a crash of the process or the machine, and a checkpoint that did not commit leaves the
previous one intact. Without a path the database lives in memory (tests, the harness).
"""
from __future__ import annotations

import json
import sqlite3
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

# `sources` gets a row per source heard from at every checkpoint: WITHOUT ROWID keeps its rows in the
# primary key's b-tree alone, one b-tree to update instead of two (a database made before keeps its
# rowid table, which is read and written the same way)
SCHEMA = """
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_batches (n INTEGER PRIMARY KEY, ids TEXT NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sources (source TEXT PRIMARY KEY, sequence INTEGER NOT NULL) WITHOUT ROWID;
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
            # one thread at a time: the reactor commits in its checkpoint thread (gateway/reactor/committer.py)
            self.db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            self._migrate_seen()
        except sqlite3.Error as exc:
            raise ConfigError(f"reactor state {path}: {exc}; move the file away to start empty") from None
        # (row, number of ids) of each batch of handled ids, oldest first: what to trim is decided here
        self._seen_batches: deque[tuple[int, int]] = deque(
            self.db.execute("SELECT n, count FROM seen_batches ORDER BY n"))
        self._seen_held = sum(count for _, count in self._seen_batches)

    def _migrate_seen(self) -> None:
        """Before 0.2 each handled id had a row of its own; now each checkpoint's ids share one."""
        db = self.db
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seen'").fetchone():
            ids = [row[0] for row in db.execute("SELECT id FROM seen ORDER BY n")]
            with db:
                if ids:
                    db.execute("INSERT INTO seen_batches (ids, count) VALUES (?, ?)", ("\n".join(ids), len(ids)))
                db.execute("DROP TABLE seen")

    def load(self) -> dict[str, Any]:
        db = self.db
        meta = dict(db.execute("SELECT name, value FROM meta"))
        return {
            "states": {key: json.loads(value) for key, value in db.execute("SELECT key, value FROM state")},
            "seen": [i for (ids,) in db.execute("SELECT ids FROM seen_batches ORDER BY n") for i in ids.split("\n")],
            "sources": dict(db.execute("SELECT source, sequence FROM sources")),
            "timers": [(key, name, deadline, tuple(json.loads(cause)))
                       for key, name, deadline, cause in db.execute("SELECT key, name, deadline, cause FROM timers")],
            "outbox": {fact_id: (topic, bytes(payload))
                       for fact_id, topic, payload in db.execute("SELECT * FROM outbox")},
            "sequence": int(meta.get("sequence", 0)),
        }

    def commit(self, changes: Changes) -> None:
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)", changes.states.items())
            batch, trimmed = self._write_seen(changes.seen, changes.seen_window)
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
        if batch is not None:
            self._seen_batches.append(batch)
            self._seen_held += batch[1]
        for _ in range(trimmed):
            self._seen_held -= self._seen_batches.popleft()[1]

    def _write_seen(self, ids: list[str], window: int) -> tuple[tuple[int, int] | None, int]:
        """Store the checkpoint's handled ids as one row, and delete the oldest rows that the newest
        `window` ids no longer need; returns the new (row, count) and how many old rows went."""
        if not ids:
            return None, 0
        insert = self.db.execute("INSERT INTO seen_batches (ids, count) VALUES (?, ?)", ("\n".join(ids), len(ids)))
        row = insert.lastrowid
        assert row is not None  # an INSERT always sets it
        held, trimmed = self._seen_held + len(ids), 0
        for _, count in self._seen_batches:
            if held - count < window:
                break
            held -= count
            trimmed += 1
        if trimmed:
            self.db.execute("DELETE FROM seen_batches WHERE n <= ?", (self._seen_batches[trimmed - 1][0],))
        return (row, len(ids)), trimmed
