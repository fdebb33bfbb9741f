"""Ingest keeps each Homie $description on disk and decodes a restart's backlog with it (ingest/documents.py)."""
from __future__ import annotations

import json

import pytest

from gateway.errors import ConfigError
from gateway.events import EventRejectedV1, ReadingV1
from gateway.fleet import Fleet, Registry
from gateway.ingest.documents import KeptDocuments
from gateway.ingest.service import Ingest
from gateway.transport import Message

FLEET = Fleet.model_validate({"sites": [{"id": "hq", "rooms": [{"id": "lab", "devices": [
    {"kind": "temperature", "profile": "homie", "native": "super-car"}]}]}]})
DESCRIPTION_TOPIC = "homie/5/super-car/$description"
VALUE = Message("homie/5/super-car/engine/temperature", b"21.5")


def description(unit: str = "°C") -> bytes:
    return json.dumps({"homie": "5.0", "version": 7, "name": "Super car", "nodes": {"engine": {"properties": {
        "temperature": {"unit": unit, "datatype": "float"}}}}}).encode()


def restarted(path, description_payload: bytes | None = None) -> Ingest:
    """An ingest that saw `description_payload` (if any), then a new one on the same file, as after a restart."""
    before = Ingest(Registry(FLEET), KeptDocuments(path, limit=10))
    if description_payload is not None:
        assert before.facts(Message(DESCRIPTION_TOPIC, description_payload, retain=True)) == []
    before.documents.close()
    return Ingest(Registry(FLEET), KeptDocuments(path, limit=10))


def test_a_value_after_a_restart_is_decoded_with_the_description_kept_before_it(tmp_path):
    after = restarted(tmp_path / "kept.sqlite", description())
    [event] = after.facts(VALUE)
    assert isinstance(event.data, ReadingV1) and event.subject == "lab-temperature-1"
    assert [(m.name, m.unit, m.value) for m in event.data.measurements] == [("temperature", "Cel", 21.5)]
    assert after.counts["documents_recalled"] == 1


def test_without_a_kept_description_the_value_is_refused_as_before(tmp_path):
    [event] = restarted(tmp_path / "kept.sqlite").facts(VALUE)
    assert isinstance(event.data, EventRejectedV1)
    assert "no $description of super-car seen yet" in event.data.reason


def test_a_newer_description_replaces_the_kept_one_and_an_empty_one_forgets_it(tmp_path):
    path = tmp_path / "kept.sqlite"
    kept = KeptDocuments(path, limit=10)
    kept.keep(DESCRIPTION_TOPIC, description("°C"))
    kept.keep(DESCRIPTION_TOPIC, description("°F"))
    assert list(kept) == [(DESCRIPTION_TOPIC, description("°F"))]
    kept.keep(DESCRIPTION_TOPIC, b"")  # the device removed: its retained description cleared
    assert list(kept) == [] and kept.count == 0
    kept.close()
    assert list(KeptDocuments(path, limit=10)) == []


def test_past_the_limit_the_document_announced_least_recently_is_forgotten(tmp_path):
    path = tmp_path / "kept.sqlite"
    kept = KeptDocuments(path, limit=2)
    for device in ("a", "b", "a"):  # a announced again: now b is the least recent
        kept.keep(f"homie/5/{device}/$description", description())
    kept.close()
    kept = KeptDocuments(path, limit=2)  # the order of announcements survives a restart
    kept.keep("homie/5/c/$description", description())
    assert [topic for topic, _ in kept] == ["homie/5/a/$description", "homie/5/c/$description"]
    assert kept.count == 2


def test_a_kept_document_its_profile_now_refuses_is_forgotten_and_ingest_starts(tmp_path):
    path = tmp_path / "kept.sqlite"
    kept = KeptDocuments(path, limit=10)
    kept.keep(DESCRIPTION_TOPIC, b"not json")
    kept.close()
    after = Ingest(Registry(FLEET), KeptDocuments(path, limit=10))
    assert list(after.documents) == [] and after.counts["documents_recalled"] == 0


def test_a_refused_description_is_not_kept(tmp_path):
    ingest = Ingest(Registry(FLEET), KeptDocuments(tmp_path / "kept.sqlite", limit=10))
    [rejected] = ingest.facts(Message(DESCRIPTION_TOPIC, b"{", retain=True))
    assert isinstance(rejected.data, EventRejectedV1)
    assert list(ingest.documents) == []


def test_a_failing_disk_is_counted_and_the_description_still_serves_from_memory(tmp_path):
    ingest = Ingest(Registry(FLEET), KeptDocuments(tmp_path / "kept.sqlite", limit=10))
    ingest.documents.db.execute("PRAGMA query_only = ON")  # every write now fails, as on a full disk
    assert ingest.facts(Message(DESCRIPTION_TOPIC, description(), retain=True)) == []
    assert ingest.counts["documents_not_kept"] == 1
    [event] = ingest.facts(VALUE)
    assert isinstance(event.data, ReadingV1)


def test_a_folder_it_cannot_write_is_a_clear_configuration_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="ingest's kept documents .*file/kept.sqlite"):
        KeptDocuments(tmp_path / "file" / "kept.sqlite", limit=10)


def test_an_emptied_description_forgets_the_device_in_memory_and_on_disk(tmp_path):
    path = tmp_path / "kept.sqlite"
    ingest = Ingest(Registry(FLEET), KeptDocuments(path, limit=10))
    assert ingest.facts(Message(DESCRIPTION_TOPIC, description(), retain=True)) == []
    assert ingest.facts(Message(DESCRIPTION_TOPIC, b"")) == []  # the device removed
    [rejected] = ingest.facts(VALUE)
    assert "no $description of super-car seen yet" in rejected.data.reason
    assert list(KeptDocuments(path, limit=10)) == []


def damage(path, keep_pages: int) -> None:
    """Overwrite every page of the SQLite file at `path` after the first `keep_pages`."""
    damaged = bytearray(path.read_bytes())
    start = int.from_bytes(damaged[16:18], "big") * keep_pages
    damaged[start:] = b"\xff" * (len(damaged) - start)
    path.write_bytes(damaged)


def kept_description(path) -> None:
    kept = KeptDocuments(path, limit=10)
    kept.keep(DESCRIPTION_TOPIC, description() * 100)  # pages of its own, beyond the table's
    kept.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    kept.close()


def test_a_damaged_file_is_moved_aside_and_ingest_starts_without_it(tmp_path):
    path = tmp_path / "kept.sqlite"
    kept_description(path)
    damage(path, keep_pages=1)  # the schema still reads, the table does not
    after = Ingest(Registry(FLEET), KeptDocuments(path, limit=10))
    assert after.counts["documents_not_recalled"] == 1 and after.counts["documents_recalled"] == 0
    assert (tmp_path / "kept.sqlite.damaged").exists()
    [rejected] = after.facts(VALUE)
    assert isinstance(rejected.data, EventRejectedV1)
    assert after.facts(Message(DESCRIPTION_TOPIC, description(), retain=True)) == []  # kept in the new file
    assert [topic for topic, _ in KeptDocuments(path, limit=10)] == [DESCRIPTION_TOPIC]


def test_a_document_that_cannot_be_read_is_counted_and_ingest_starts(tmp_path):
    path = tmp_path / "kept.sqlite"
    kept_description(path)
    damage(path, keep_pages=2)  # the table reads, the description's overflow pages do not
    after = Ingest(Registry(FLEET), KeptDocuments(path, limit=10))
    assert after.counts["documents_not_recalled"] == 1 and after.counts["documents_recalled"] == 0
    assert not (tmp_path / "kept.sqlite.damaged").exists()  # found only as ingest read it
