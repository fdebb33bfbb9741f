import pytest

from gateway.errors import InvalidInput
from gateway.history import HistoryQuery, format_table, rows_to_events


def test_query_filters_by_subject_type_and_time():
    statement = HistoryQuery(subject="temp-1", type="alert.raised.v1", since="2h").influxql()
    assert "FROM \"events\" WHERE time > now() - 2h AND \"subject\" = 'temp-1' AND \"type\" = 'alert.raised.v1'" in statement
    assert statement.endswith("ORDER BY time DESC LIMIT 1000")  # the newest 1000, printed oldest first


@pytest.mark.parametrize(
    "query, message",
    [
        (HistoryQuery(subject="x' OR '1'='1"), "invalid subject"),
        (HistoryQuery(type="reading.v1' --"), "invalid event type"),
        (HistoryQuery(since="15m; DROP DATABASE choreo"), "--since"),
        (HistoryQuery(since="0m"), "--since"),
        (HistoryQuery(limit=0), "--limit"),
    ],
)
def test_unsafe_or_invalid_filters_are_refused(query, message):
    with pytest.raises(InvalidInput, match=message):
        query.influxql()


def test_rows_become_cloudevents():
    series = [{
        "name": "events",
        "columns": ["time", "type", "subject", "source", "id", "correlationid", "causationid", "sequence", "data"],
        "values": [[1_795_000_000_123_456_789, "alert.cleared.v1", "temp-1", "reactor/threshold", "B", "A", "A", 2,
                    '{"alert":"temperature.high","metric":"temperature","value":26.0,"limit":27.0,"unit":"Cel"}']],
    }]
    [event] = rows_to_events(series)
    assert event["time"] == "2026-11-18T11:06:40.123456Z"
    assert (event["id"], event["causationid"], event["sequence"]) == ("B", "A", 2)
    assert event["data"]["value"] == 26.0
    assert "temperature.high: 26 Cel < 27" in format_table([event])
