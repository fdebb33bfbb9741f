import pytest

from gateway.sink.spool import Spool, SpoolFull, record_size


def drain(spool: Spool) -> list[bytes]:
    records, position = spool.peek(1000)
    spool.advance(position, len(records), sum(record_size(r) for r in records))
    return records


def test_records_come_back_in_order_across_reopens(tmp_path):
    spool = Spool(tmp_path, 1 << 20)
    spool.append([b"a", b"b"])
    spool.append([b"c"])
    records, position = spool.peek(2)
    assert records == [b"a", b"b"]
    spool.advance(position, 2, sum(record_size(r) for r in records))
    reopened = Spool(tmp_path, 1 << 20)  # a restart: the cursor and the rest are on disk
    assert len(reopened) == 1 and drain(reopened) == [b"c"]
    assert len(reopened) == 0 and reopened.bytes == 0


def test_peek_does_not_move_the_cursor(tmp_path):
    spool = Spool(tmp_path, 1 << 20)
    spool.append([b"x"])
    assert spool.peek(10)[0] == spool.peek(10)[0] == [b"x"]


def test_a_torn_last_record_is_cut_off(tmp_path):
    spool = Spool(tmp_path, 1 << 20)
    spool.append([b"kept"])
    segment = next(tmp_path.glob("spool-*.log"))
    with open(segment, "ab") as file:
        file.write(b"\x10\x00\x00\x00\x00\x00\x00\x00half")  # a crash in the middle of an append
    reopened = Spool(tmp_path, 1 << 20)
    assert len(reopened) == 1 and drain(reopened) == [b"kept"]
    reopened.append([b"after"])
    assert drain(Spool(tmp_path, 1 << 20)) == [b"after"]


def test_the_size_limit_refuses_whole_appends(tmp_path):
    spool = Spool(tmp_path, 64)
    spool.append([b"x" * 40])
    with pytest.raises(SpoolFull):
        spool.append([b"y" * 40])
    assert len(spool) == 1


def test_segments_roll_over_and_consumed_ones_are_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr("gateway.sink.spool.SEGMENT_BYTES", 100)
    spool = Spool(tmp_path, 1 << 20)
    for n in range(10):
        spool.append([b"%02d" % n * 20])
    assert len(list(tmp_path.glob("spool-*.log"))) > 3
    assert [r[:2] for r in drain(spool)] == [b"%02d" % n for n in range(10)]
    assert len(list(tmp_path.glob("spool-*.log"))) == 1
