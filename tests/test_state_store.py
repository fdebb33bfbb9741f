"""The reactor's state database: a database made by an older version is read and written as before."""
import sqlite3

from gateway.state import Changes, StateStore


def test_a_database_whose_sources_table_has_a_rowid_reads_and_writes_as_before(tmp_path):
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as db:  # as versions before WITHOUT ROWID made it
        db.execute("CREATE TABLE sources (source TEXT PRIMARY KEY, sequence INTEGER NOT NULL)")
        db.execute("INSERT INTO sources VALUES ('device/a', 7)")
    store = StateStore(path)
    assert store.load()["sources"] == {"device/a": 7}
    store.commit(Changes(sources={"device/a": 8, "device/b": 1}))
    assert StateStore(path).load()["sources"] == {"device/a": 8, "device/b": 1}


def test_a_new_database_keeps_each_sources_newest_sequence(tmp_path):
    path = tmp_path / "state.sqlite"
    store = StateStore(path)
    store.commit(Changes(sources={"device/a": 1, "device/b": 5}))
    store.commit(Changes(sources={"device/a": 2}))
    assert StateStore(path).load()["sources"] == {"device/a": 2, "device/b": 5}
