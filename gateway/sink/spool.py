"""The sink's disk spool: an append-only, crash-safe queue of events waiting for InfluxDB.

Records are appended to segment files (`spool-000000000001.log`, ...) as
`length | crc32 | bytes`, then fsync'ed, before the deliveries they hold are
acknowledged to the broker. A cursor file (replaced atomically) says how far the
replay has got; segments behind it are deleted. On open, a torn record at the end of
the last segment (a crash mid-append) is cut off: it was never acknowledged.
"""
from __future__ import annotations

import fcntl
import json
import os
import struct
import zlib
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from ..errors import ChoreoError, ConfigError

HEADER = struct.Struct("<II")
SEGMENT_BYTES = 64 * 1024 * 1024
Position = tuple[int, int]  # (segment number, byte offset)


class SpoolCorrupt(ChoreoError):
    """A record in the middle of the spool fails its checksum (disk damage, not a crash)."""


class SpoolFull(ChoreoError):
    """Appending would pass the spool's size limit."""

    retryable = True


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = open(directory / "lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"spool {directory} is in use by another sink; "
                              "give each replica its own --instance") from None
        self.cursor: Position = self._load_cursor()
        self.records = 0
        self.bytes = 0
        self._scan()

    def close(self) -> None:
        """Release the directory for another process (the lock also goes when the process dies)."""
        self._lock.close()

    # -- state on disk -----------------------------------------------------------------
    def _segment(self, number: int) -> Path:
        return self.directory / f"spool-{number:012d}.log"

    def _segments(self) -> list[int]:
        return sorted(int(path.stem.split("-")[1]) for path in self.directory.glob("spool-*.log"))

    def _load_cursor(self) -> Position:
        path = self.directory / "cursor"
        if not path.exists():
            return (self._segments() or [1])[0], 0
        document = json.loads(path.read_text())
        return document["segment"], document["offset"]

    def _scan(self) -> None:
        """Count what waits behind the cursor; cut a torn record off the last segment."""
        segments = [n for n in self._segments() if n >= self.cursor[0]]
        for number in segments:
            start = self.cursor[1] if number == self.cursor[0] else 0
            end, count = self._valid_end(number, start)
            if number == segments[-1] and end < self._segment(number).stat().st_size:
                with open(self._segment(number), "r+b") as file:
                    file.truncate(end)
                    os.fsync(file.fileno())
            self.records += count
            self.bytes += end - start
        self._tail = segments[-1] if segments else self.cursor[0]

    def _valid_end(self, number: int, offset: int) -> tuple[int, int]:
        """Where the intact records from `offset` on end, and how many there are."""
        end, count = offset, 0
        with open(self._segment(number), "rb") as file:
            try:
                for _, after in _records(file, offset):
                    end, count = after, count + 1
            except SpoolCorrupt:
                pass  # torn by a crash mid-append, or damaged: the intact records end here either way
        return end, count

    # -- the queue -----------------------------------------------------------------------
    def __len__(self) -> int:
        return self.records

    def append(self, records: list[bytes]) -> None:
        """Add records durably (written and fsync'ed) or raise SpoolFull; all or nothing."""
        data = b"".join(HEADER.pack(len(r), zlib.crc32(r)) + r for r in records)
        if self.bytes and self.bytes + len(data) > self.max_bytes:  # an empty spool takes any one batch
            raise SpoolFull(f"spool at {self.bytes:,} of {self.max_bytes:,} bytes; cannot take {len(data):,} more")
        path = self._segment(self._tail)
        if path.exists() and path.stat().st_size + len(data) > SEGMENT_BYTES and path.stat().st_size:
            self._tail += 1
            path = self._segment(self._tail)
        new = not path.exists()
        with open(path, "ab") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if new:
            _fsync_directory(self.directory)
        self.records += len(records)
        self.bytes += len(data)

    def peek(self, limit: int) -> tuple[list[bytes], Position]:
        """Up to `limit` records from the cursor on, and the position just after them."""
        records: list[bytes] = []
        number, offset = self.cursor
        while len(records) < limit and number <= self._tail:
            path = self._segment(number)
            if path.exists():
                with open(path, "rb") as file:
                    for record, end in islice(_records(file, offset), limit - len(records)):
                        records.append(record)
                        offset = end
            if len(records) < limit and number < self._tail:
                number, offset = number + 1, 0
            else:
                break
        return records, (number, offset)

    def advance(self, position: Position, count: int, size: int) -> None:
        """Mark `count` records (`size` bytes with headers) up to `position` as stored in InfluxDB."""
        temporary = self.directory / "cursor.tmp"
        with open(temporary, "w") as file:
            json.dump({"segment": position[0], "offset": position[1]}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.directory / "cursor")
        _fsync_directory(self.directory)
        self.cursor = position
        self.records -= count
        self.bytes -= size
        for number in self._segments():
            if number < position[0]:
                self._segment(number).unlink()


def _records(file: BinaryIO, offset: int) -> Iterator[tuple[bytes, int]]:
    """Each record of a segment from `offset` on, with the offset just after it, up to the end of the file
    (a partial header counts as the end); SpoolCorrupt at a record cut short or failing its checksum."""
    file.seek(offset)
    while len(header := file.read(HEADER.size)) == HEADER.size:
        length, checksum = HEADER.unpack(header)
        record = file.read(length)
        if len(record) < length or zlib.crc32(record) != checksum:
            raise SpoolCorrupt(f"spool segment {os.path.basename(file.name)} is damaged at byte {offset}; "
                               "move it away to go on (its later records are lost)")
        offset += HEADER.size + length
        yield record, offset


def record_size(record: bytes) -> int:
    return HEADER.size + len(record)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
