from datetime import UTC, datetime

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.events import (
    MAX_SEQUENCE,
    METRIC_NAME_PATTERN,
    SENML_UNITS,
    AlertRaisedV1,
    Measurement,
    ReadingV1,
    new_event,
)
from gateway.sink.lineprotocol import encode_point
from gateway.sink.schema import event_lines, nanoseconds, reading_line, storable_as_one_point, timestamp_ns
from gateway.topics import ID_PATTERN

T = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
READING = ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=21.5),
                                  Measurement(name="battery", unit="%EL", value=90)])


def test_a_reading_is_one_point_with_its_measurements_as_fields():
    event = new_event(READING, source="device/temp-1", subject="temp-1", time=T, sequence=9)
    [line] = event_lines(event)
    assert line.startswith("readings,device=temp-1,source=device/temp-1,type=reading.v1,"
                           "unit.battery=%EL,unit.temperature=Cel ")
    assert f'id="{event.id}"' in line and "sequence=9i" in line
    assert "temperature=21.5" in line and "battery=90.0" in line
    assert "correlationid" not in line  # a root: its correlation id is its id


def test_a_caused_reading_keeps_its_correlation_and_causation():
    root = new_event(READING, source="device/temp-1", subject="temp-1", time=T)
    [line] = event_lines(new_event(READING, source="reactor/calibrate", subject="temp-1", cause=root))
    assert f'correlationid="{root.id}"' in line and f'causationid="{root.id}"' in line


def test_a_reading_whose_names_cannot_be_fields_is_stored_as_an_event():
    for names in (("temperature", "temperature"), ("temperature", "sequence"), ("room",)):
        reading = ReadingV1(measurements=[Measurement(name=name, unit="Cel", value=1) for name in names])
        [line] = event_lines(new_event(reading, source="device/temp-1", subject="temp-1", time=T))
        assert line.startswith("events,source=device/temp-1,subject=temp-1,type=reading.v1 ")
        assert '"measurements":[{"name":"' in line.replace('\\"', '"')


def test_the_same_event_always_maps_to_the_same_lines():
    event = new_event(READING, source="device/temp-1", subject="temp-1", time=T)
    assert event_lines(event) == event_lines(event.model_copy())


def test_events_of_one_source_at_the_same_microsecond_get_distinct_timestamps():
    # A device clock that counts milliseconds stamps a burst alike; 1,000 ids would share hash slots.
    stamps = {timestamp_ns(new_event(READING, source="device/temp-1", subject="temp-1", time=T, sequence=n))
              for n in range(1000)}
    assert len(stamps) == 1000
    assert all(stamp // 1000 == int(T.timestamp()) * 1_000_000 + 123456 for stamp in stamps)


def test_events_without_a_sequence_at_the_same_microsecond_mostly_get_distinct_timestamps():
    stamps = {timestamp_ns(new_event(READING, source="device/temp-1", subject="temp-1", time=T)) for _ in range(50)}
    assert len(stamps) >= 43  # 50 ids in 1,000 slots: about one collision expected, 8 would be a broken hash


def test_caused_events_store_their_causation():
    root = new_event(READING, source="device/temp-1", subject="temp-1", time=T)
    alert = new_event(AlertRaisedV1(alert="temperature.high", metric="temperature", value=29, limit=28, unit="Cel",
                                    above_seconds=2), source="reactor/threshold", subject="temp-1", cause=root)
    [line] = event_lines(alert)
    assert f'causationid="{root.id}"' in line and f'correlationid="{root.id}"' in line


@settings(max_examples=200, deadline=None)
@given(measurements=st.lists(st.tuples(st.from_regex(METRIC_NAME_PATTERN, fullmatch=True),
                                       st.sampled_from(sorted(SENML_UNITS)),
                                       st.floats(allow_nan=False, allow_infinity=False) | st.integers(-2**53, 2**53)),
                             min_size=1, max_size=5, unique_by=lambda m: m[0]),
       place=st.tuples(*[st.none() | st.from_regex(ID_PATTERN, fullmatch=True)] * 3),
       sequence=st.none() | st.integers(0, MAX_SEQUENCE), caused=st.booleans())
def test_the_written_out_reading_line_is_the_general_encoders_line(measurements, place, sequence, caused):
    reading = ReadingV1(measurements=[Measurement(name=n, unit=u, value=v) for n, u, v in measurements],
                        site=place[0], room=place[1], kind=place[2])
    root = new_event(READING, source="device/temp-1", subject="temp-1", time=T)
    event = new_event(reading, source="device/temp-1", subject="temp-1", time=T, sequence=sequence,
                      cause=root if caused else None)
    assume(storable_as_one_point(reading))
    tags = {"device": event.subject, "type": event.type, "source": event.source, "site": reading.site or "",
            "room": reading.room or "", "kind": reading.kind or "",
            **{f"unit.{m.name}": m.unit for m in reading.measurements}}
    fields = {"id": event.id, **({"correlationid": root.id, "causationid": root.id} if caused else {}),
              **({"sequence": sequence} if sequence is not None else {}), "emittedtime": nanoseconds(event.emittedtime),
              **{m.name: float(m.value) for m in reading.measurements}}
    assert reading_line(event) == encode_point("readings", tags, fields, timestamp_ns(event))
