import pytest

from gateway.console import lookups
from gateway.console.lookups import HistoryLookups, _readings
from gateway.errors import InvalidInput
from gateway.history import device_readings_query, event_query, events_about_query, trace_query
from gateway.settings import InfluxSettings


def series(count: int) -> dict:
    """`count` stored readings of a device, newest first; every other one also measured humidity."""
    columns = ["time", "device", "id", "temperature", "unit.temperature", "humidity", "unit.humidity"]
    rows = [[(1000 - n) * 1_000_000_000, "t-1", f"R{n}", float(n), "Cel", *((50.0, "%RH") if n % 2 else (None, None))]
            for n in range(count)]
    return {"name": "readings", "columns": columns, "values": rows}


def test_readings_are_oldest_first_in_unix_ms_by_metric_and_cut_to_the_newest_points(monkeypatch):
    monkeypatch.setattr(lookups, "MAX_POINTS", 3)
    readings, truncated = _readings([series(4)])
    assert truncated
    assert readings["temperature"] == {"unit": "Cel", "points": [[998_000, 2.0], [999_000, 1.0], [1_000_000, 0.0]]}
    assert readings["humidity"] == {"unit": "%RH", "points": [[999_000, 50.0]]}
    assert _readings([series(3)])[1] is False


@pytest.mark.parametrize("query", [
    lambda: device_readings_query("x' OR '1'='1", "1h", 10),
    lambda: events_about_query("dev-a", ["reading.v1' OR type =~ /./"], "1h", 10),
    lambda: events_about_query("dev-a", ["reading.v1"], "1h; DROP DATABASE choreo", 10),
    lambda: event_query("01J0000000000000000000NONE' OR '1'='1"),
    lambda: trace_query("short"),
])
def test_every_value_placed_in_a_query_is_validated_first(query):
    with pytest.raises(InvalidInput):
        query()


async def test_a_chain_asked_by_the_id_of_a_later_step_is_read_again_by_its_correlation_id(monkeypatch):
    statements: list[str] = []
    columns = ["time", "type", "subject", "source", "id", "correlationid", "causationid", "sequence", "emittedtime",
               "data"]

    def query(statement: str) -> list[dict]:
        statements.append(statement)
        step = [1, "alert.raised.v1", "t-1", "reactor/threshold", "ALERT00000", "ROOT000000", "ROOT000000", None,
                None, "{}"]
        return [{"name": "events", "columns": columns, "values": [step]}]

    history = HistoryLookups(InfluxSettings())
    monkeypatch.setattr(history.database, "query", query)
    await history.chain("ALERT00000", None, "7d")
    assert "\"id\" = 'ALERT00000' OR \"correlationid\" = 'ALERT00000'" in statements[0]
    assert "\"correlationid\" = 'ROOT000000'" in statements[1] and len(statements) == 2
    statements.clear()
    await history.chain("ALERT00000", "ROOT000000", "7d")  # known from the live buffer: one query
    assert len(statements) == 1
