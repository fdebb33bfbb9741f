"""The documents ingest decodes other messages by (Homie's retained `$description`), kept on disk.

A profile learns such a document from the broker's retained copy, which a subscription brings. But
after a restart that kept ingest's session, the broker first hands over what the devices sent while
ingest was away, and only then the retained copies: without a document of its own, ingest would
refuse each of those values ("no $description seen yet"). So ingest keeps the latest document of each
topic here and reads them all back before its first delivery; the broker's copy, when it comes,
replaces it. Past `limit` documents, the one announced least recently is forgotten, as in memory.

Writes go to SQLite's write-ahead log without an fsync of their own (synchronous=NORMAL): losing the
last ones to a power cut only brings back the rejections this avoids. A description is at most
256 KiB (gateway/profiles/homie.py), so the file holds at most `limit` times that.
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

# `announced` numbers the writes, so the least recently announced document is the first to go
SCHEMA = "CREATE TABLE IF NOT EXISTS documents (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, announced INTEGER)"
KEEP = "INSERT OR REPLACE INTO documents VALUES (?, ?, ?)"
TRIM = "DELETE FROM documents WHERE topic IN (SELECT topic FROM documents ORDER BY announced LIMIT ?)"
DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}  # not a busy or unreadable file: those stop ingest with an error


class KeptDocuments:
    """The latest document of each topic, in SQLite at `path`."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.failing = False  # the last write failed: logged once, until one succeeds again
        self.damaged = False  # the file was damaged and is moved aside: what it held is lost
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._open()
            except sqlite3.DatabaseError as exc:
                if exc.sqlite_errorname not in DAMAGED:
                    raise
                self._move_aside(exc)
                self._open()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"ingest's kept documents {path}: {exc}") from None

    def _open(self) -> None:
        # another ingest on the same file holds its lock for one small write: wait that long, not
        # longer, as this runs on the event loop
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=1.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(SCHEMA)
        self.count, self.announced = self.db.execute(
            "SELECT count(*), coalesce(max(announced), 0) FROM documents").fetchone()

    def _move_aside(self, error: sqlite3.Error) -> None:
        """A cache is not worth stopping ingest for: the damaged file goes aside, for whoever wants to look."""
        self.db.close()
        aside = self.path.with_name(self.path.name + ".damaged")
        self.path.replace(aside)
        for log_file in ("-wal", "-shm"):
            self.path.with_name(self.path.name + log_file).unlink(missing_ok=True)
        log.error("ingest's kept documents %s are damaged (%s): moved to %s, starting without them",
                  self.path, error, aside)
        self.damaged = True

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        """Every kept (topic, payload), the least recently announced first; sqlite3.Error if the file is damaged."""
        for topic, payload in self.db.execute("SELECT topic, payload FROM documents ORDER BY announced"):
            yield topic, bytes(payload)

    def keep(self, topic: str, payload: bytes) -> bool:
        """Remember `payload` as the document on `topic`; an empty one (a cleared retained copy) forgets it.
        False if the disk failed (logged, not raised): the document then lives in memory only."""
        try:
            if not payload:
                self.count -= self.db.execute("DELETE FROM documents WHERE topic = ?", (topic,)).rowcount
            else:
                self._write(topic, payload)
        except sqlite3.Error as exc:
            if not self.failing:
                log.error("could not keep the document on %s in %s: %s (logged once until a write succeeds)",
                          topic[:128], self.path, exc)
            self.failing = True
            return False
        self.failing = False
        return True

    def _write(self, topic: str, payload: bytes) -> None:
        new = not self.db.execute("SELECT 1 FROM documents WHERE topic = ?", (topic,)).fetchone()
        self.announced += 1
        self.db.execute(KEEP, (topic, payload, self.announced))
        self.count += new
        if self.count > self.limit:
            self.count -= self.db.execute(TRIM, (self.count - self.limit,)).rowcount

    def close(self) -> None:
        self.db.close()
