from datetime import UTC, datetime

from gateway.events import AlertRaisedV1, Measurement, ReadingV1, new_event
from gateway.sink.schema import event_lines, timestamp_ns

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


def test_events_at_the_same_microsecond_get_distinct_timestamps():
    stamps = {timestamp_ns(new_event(READING, source="device/temp-1", subject="temp-1", time=T)) for _ in range(50)}
    assert len(stamps) >= 43  # 50 ids in 1,000 slots: about one collision expected, 8 would be a broken hash
    assert all(stamp // 1000 == int(T.timestamp()) * 1_000_000 + 123456 for stamp in stamps)


def test_caused_events_store_their_causation():
    root = new_event(READING, source="device/temp-1", subject="temp-1", time=T)
    alert = new_event(AlertRaisedV1(alert="temperature.high", metric="temperature", value=29, limit=28, unit="Cel",
                                    above_seconds=2), source="reactor/threshold", subject="temp-1", cause=root)
    [line] = event_lines(alert)
    assert f'causationid="{root.id}"' in line and f'correlationid="{root.id}"' in line
