"""The documents ingest decodes other messages by (Homie's retained `$description`), kept on disk.

A profile learns such a document from the broker's retained copy, which a subscription brings. But
after a restart that kept ingest's session, the broker first hands over what the devices sent while
ingest was away, and only then the retained copies: without a document of its own, ingest would
refuse each of those values ("no $description seen yet"). So ingest keeps the latest document of each
topic here and reads them all back before its first delivery; the broker's copy, when it comes,
replaces a stale one. Only what changed is written, and the oldest are forgotten past `limit`.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

SCHEMA = "CREATE TABLE IF NOT EXISTS documents (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, kept INTEGER NOT NULL)"
# a changed payload replaces the row; the same payload again writes nothing
KEEP = ("INSERT INTO documents VALUES (?, ?, ?) ON CONFLICT (topic) DO UPDATE "
        "SET payload = excluded.payload, kept = excluded.kept WHERE payload != excluded.payload")
TRIM = "DELETE FROM documents WHERE topic IN (SELECT topic FROM documents ORDER BY kept LIMIT ?)"


class KeptDocuments:
    """The latest document of each topic, in SQLite at `path`."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # another ingest on the same file holds its lock for one small write: wait that long, not longer,
            # as this runs on the event loop
            self.db = sqlite3.connect(path, isolation_level=None, timeout=1.0)
            self.db.execute("PRAGMA journal_mode=WAL")
            # losing the last write to a power cut only means waiting for the broker's copy, as before
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(SCHEMA)
            self.count = self.db.execute("SELECT count(*) FROM documents").fetchone()[0]
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"ingest's kept documents {path}: {exc}; move the file away to start empty") from None

    def all(self) -> list[tuple[str, bytes]]:
        """Every kept (topic, payload), the oldest first."""
        return [(topic, bytes(payload)) for topic, payload in
                self.db.execute("SELECT topic, payload FROM documents ORDER BY kept")]

    def keep(self, topic: str, payload: bytes) -> bool:
        """Remember `payload` as the document on `topic`; an empty one (a cleared retained copy) forgets it.
        False if the disk failed (logged, not raised): the document then lives in memory only."""
        try:
            if not payload:
                self.count -= self.db.execute("DELETE FROM documents WHERE topic = ?", (topic,)).rowcount
                return True
            added = not self.db.execute("SELECT 1 FROM documents WHERE topic = ?", (topic,)).fetchone()
            self.db.execute(KEEP, (topic, payload, time.time_ns()))
            self.count += added
            if self.count > self.limit:
                self.count -= self.db.execute(TRIM, (self.count - self.limit,)).rowcount
            return True
        except sqlite3.Error as exc:
            log.error("could not keep the document on %s in %s: %s", topic[:128], self.path, exc)
            return False

    def close(self) -> None:
        self.db.close()
