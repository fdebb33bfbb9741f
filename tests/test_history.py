import pytest

from gateway.errors import InvalidInput
from gateway.history import HistoryQuery, format_rows, format_trace, rows_to_events


def test_query_filters_by_subject_type_and_time():
    statement = HistoryQuery(subject="temp-1", type="alert.raised.v1", since="2h").influxql()
    assert ("FROM \"events\" WHERE time > now() - 2h AND (\"subject\" = 'temp-1' OR \"device\" = 'temp-1') "
            "AND \"type\" = 'alert.raised.v1'") in statement
    assert 'FROM "events", "readings" WHERE' in HistoryQuery(type="reading.v1").influxql()
    assert 'FROM "events", "readings" WHERE' in HistoryQuery().influxql()
    assert statement.endswith("ORDER BY time DESC LIMIT 1000")  # the newest 1000, printed oldest first


@pytest.mark.parametrize(
    "query, message",
    [
        (HistoryQuery(subject="x' OR '1'='1"), "invalid subject"),
        (HistoryQuery(type="reading.v1' --"), "invalid event type"),
        (HistoryQuery(since="15m; DROP DATABASE choreo"), "--since"),
        (HistoryQuery(since="0m"), "--since"),
        (HistoryQuery(until="2026-01-01T00:00:00"), "needs its UTC offset"),
        (HistoryQuery(room="lab' OR '1'='1"), "invalid room"),
        (HistoryQuery(metric="temp'"), "--metric"),
        (HistoryQuery(metric="temperature", type="reading.v1"), "do not go together"),
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
    assert "temperature.high: 26 Cel < 27" in format_rows([event], "table", readings=False)


def test_metric_queries_readings_by_device_site_and_room():
    statement = HistoryQuery(metric="temperature", site="hq", room="lab", subject="lab-temperature-1",
                             since="2026-01-01T00:00:00Z", until="1h").influxql()
    assert 'FROM "readings" WHERE time > \'2026-01-01T00:00:00Z\' AND time <= now() - 1h' in statement
    assert statement.startswith('SELECT "temperature", "unit.temperature", ')
    for condition in ("\"site\" = 'hq'", "\"room\" = 'lab'", "\"device\" = 'lab-temperature-1'",
                      "\"unit.temperature\" != ''"):
        assert condition in statement


def test_csv_output_quotes_json_data():
    events = rows_to_events([{"columns": ["time", "type", "subject", "source", "id", "correlationid", "data"],
                              "values": [[0, "reading.v1", "d-1", "device/d-1", "A", "A", '{"x":"a,b"}']]}])
    text = format_rows(events, "csv", readings=False)
    header, row = text.splitlines()
    assert header.startswith("time,type,subject,source,id,correlationid,causationid,sequence,emittedtime,data")
    assert row.endswith('"{""x"":""a,b""}"')


def test_trace_draws_the_causal_tree_with_step_times():
    alert = {"alert": "t.high", "value": 29, "unit": "Cel", "limit": 28, "above_seconds": 2}

    def event(id_, type_, cause, emitted, data):
        return {"id": id_, "type": type_, "subject": "d", "source": "s", "time": "2026-01-01T00:00:00.000000Z",
                "emittedtime": f"2026-01-01T00:00:00.{emitted:06d}Z", "causationid": cause, "data": data}
    tree = format_trace([event("R", "reading.v1", None, 0, {"measurements": []}),
                         event("A", "alert.raised.v1", "R", 1500, alert),
                         event("Q", "actuation.requested.v1", "A", 1800, {"state": "on", "reason": "x"}),
                         event("C", "actuator.changed.v1", "Q", 9800, {"state": "on"})])
    lines = tree.splitlines()
    assert lines[0].startswith("reading.v1")
    assert lines[1].startswith("└─ +1.5 ms  alert.raised.v1")
    assert lines[2].startswith("   └─ +0.3 ms  actuation.requested.v1")
    assert lines[3].startswith("      └─ +8.0 ms  actuator.changed.v1")


def test_a_type_known_only_from_its_announcement_filters_prints_and_traces_like_any_other():
    statement = HistoryQuery(type="x.happened.v1").influxql()
    assert "\"type\" = 'x.happened.v1'" in statement
    columns = ["time", "type", "subject", "source", "id", "correlationid", "causationid", "data"]
    events = rows_to_events([{"columns": columns, "values": [
        [0, "alert.raised.v1", "d-1", "reactor/threshold", "A0000000000", "A0000000000", None,
         '{"alert":"t.high","value":29,"unit":"Cel","limit":28,"above_seconds":2}'],
        [1000, "x.happened.v1", "d-1", "service/somesvc", "B0000000000", "A0000000000", "A0000000000",
         '{"count":3,"note":"door left open"}'],
    ]}])
    table = format_rows(events, "table", readings=False).splitlines()
    assert table[2].split()[1:4] == ["x.happened.v1", "d-1", '{"count":3,"note":"door']
    tree = format_trace(events).splitlines()
    assert tree[1].startswith("└─ +0.0 ms  x.happened.v1  d-1  (service/somesvc)  {\"count\":3,")


def test_a_stored_reading_becomes_its_event_again():
    series = [{"name": "readings",
               "columns": ["time", "device", "source", "type", "site", "id", "sequence", "temperature",
                           "unit.temperature", "humidity", "unit.humidity", "co2", "unit.co2"],
               "values": [[1_795_000_000_123_456_789, "t-1", "device/t-1", "reading.v1", "hq", "R", 7, 21.5, "Cel",
                           None, None, 400.0, "ppm"]]}]
    [event] = rows_to_events(series)
    assert (event["id"], event["correlationid"], event["subject"], event["sequence"]) == ("R", "R", "t-1", 7)
    assert "causationid" not in event
    assert event["data"] == {"site": "hq", "room": None, "kind": None, "measurements": [
        {"name": "temperature", "unit": "Cel", "value": 21.5}, {"name": "co2", "unit": "ppm", "value": 400.0}]}
    [reading] = HistoryQuery(metric="co2").rows(series)
    assert (reading["device"], reading["value"], reading["unit"], reading["event_id"]) == ("t-1", 400.0, "ppm", "R")


def test_a_type_without_its_version_reads_every_version():
    from gateway.history import HistoryQuery

    assert "\"type\" =~ /^alert\\.raised\\.v[0-9]+$/" in HistoryQuery(type="alert.raised").influxql()
    assert "\"type\" = 'alert.raised.v2'" in HistoryQuery(type="alert.raised.v2").influxql()
    assert '"readings"' in HistoryQuery(type="reading").influxql()


def test_a_trace_shows_a_fact_emitted_in_two_versions_once_as_its_newest():
    from gateway.history import format_trace

    root = {"id": "01AAAAAAAAAAAAAAAAAAAAAAAA", "type": "reading.v1", "subject": "t-1", "source": "device/t-1",
            "time": "2026-01-01T00:00:00.000000Z", "correlationid": "01AAAAAAAAAAAAAAAAAAAAAAAA",
            "data": {"measurements": [{"name": "temperature", "unit": "Cel", "value": 29.0}]}}
    alert = {"alert": "temperature.high", "metric": "temperature", "value": 29.0, "limit": 28.0, "unit": "Cel",
             "above_seconds": 3.0}
    raised = {**root, "id": "01BBBBBBBBBBBBBBBBBBBBBBBB", "source": "reactor/threshold",
              "causationid": root["id"], "type": "alert.raised.v1", "data": alert}
    raised_v2 = {**raised, "type": "alert.raised.v2", "data": {**alert, "severity": "critical", "rule": "t > 28"}}
    lines = format_trace([root, raised_v2, raised]).splitlines()
    assert len(lines) == 2
    assert "alert.raised.v2 (also alert.raised.v1)" in lines[1] and "(critical)" in lines[1]
