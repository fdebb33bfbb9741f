import pytest

from gateway.errors import ConfigError
from gateway.sink.spool import Spool, SpoolCorrupt, SpoolFull, record_size


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
    spool.close()
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
    spool.close()
    reopened = Spool(tmp_path, 1 << 20)
    assert len(reopened) == 1 and drain(reopened) == [b"kept"]
    reopened.append([b"after"])
    reopened.close()
    assert drain(Spool(tmp_path, 1 << 20)) == [b"after"]


def test_the_size_limit_refuses_whole_appends_but_an_empty_spool_takes_any_batch(tmp_path):
    spool = Spool(tmp_path, 64)
    spool.append([b"x" * 100])  # larger than the limit, but nothing else waits: progress is always possible
    with pytest.raises(SpoolFull):
        spool.append([b"y" * 10])
    assert len(spool) == 1


def test_one_spool_one_sink(tmp_path):
    first = Spool(tmp_path, 1 << 20)
    with pytest.raises(ConfigError, match="in use by another sink"):
        Spool(tmp_path, 1 << 20)
    first.close()
    Spool(tmp_path, 1 << 20)  # free again


def test_a_damaged_record_in_the_middle_is_reported_not_replayed(tmp_path):
    spool = Spool(tmp_path, 1 << 20)
    spool.append([b"first", b"second", b"third"])
    segment = next(tmp_path.glob("spool-*.log"))
    data = bytearray(segment.read_bytes())
    data[data.index(b"second")] ^= 0xFF  # a flipped bit, as a bad disk would
    segment.write_bytes(bytes(data))
    with pytest.raises(SpoolCorrupt, match="is damaged"):
        spool.peek(10)


def test_segments_roll_over_and_consumed_ones_are_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr("gateway.sink.spool.SEGMENT_BYTES", 100)
    spool = Spool(tmp_path, 1 << 20)
    for n in range(10):
        spool.append([b"%02d" % n * 20])
    assert len(list(tmp_path.glob("spool-*.log"))) > 3
    assert [r[:2] for r in drain(spool)] == [b"%02d" % n for n in range(10)]
    assert len(list(tmp_path.glob("spool-*.log"))) == 1


def test_a_record_cut_short_in_an_earlier_segment_is_counted_up_to_and_reported_not_replayed(tmp_path, monkeypatch):
    monkeypatch.setattr("gateway.sink.spool.SEGMENT_BYTES", 40)
    spool = Spool(tmp_path, 1 << 20)
    for record in (b"a" * 10, b"b" * 10, b"c" * 10):
        spool.append([record])
    first, *later = sorted(tmp_path.glob("spool-*.log"))
    assert later, "the records span several segments"
    first.write_bytes(first.read_bytes()[:-4])  # the end of its last record is lost, as a bad disk would lose it
    spool.close()
    reopened = Spool(tmp_path, 1 << 20)
    assert len(reopened) == 2  # the first segment's intact record and the later segment's
    with pytest.raises(SpoolCorrupt, match=rf"{first.name} is damaged at byte 18"):
        reopened.peek(10)


def test_peek_stops_at_its_limit_and_goes_on_from_the_position_it_gave(tmp_path):
    spool = Spool(tmp_path, 1 << 20)
    spool.append([b"1", b"2", b"3"])
    records, position = spool.peek(2)
    assert records == [b"1", b"2"]
    spool.advance(position, 2, sum(record_size(r) for r in records))
    assert spool.peek(10)[0] == [b"3"]
