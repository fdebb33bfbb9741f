import asyncio
import json

import pytest

from gateway.console.stream import QUEUE_LIMIT, RATE, Clients, StreamClient, StreamFilter, sse
from gateway.errors import InvalidInput
from tests.console.facts import alert, reading


def test_filters_come_from_the_query_and_empty_values_take_everything():
    assert StreamFilter.of({"type": "", "subject": "t-1", "source": "device/t-1"}) == StreamFilter(
        subject="t-1", source="device/t-1")
    assert StreamFilter.of({}) == StreamFilter()


@pytest.mark.parametrize(("params", "message"), [
    ({"type": "Reading"}, "invalid event type 'Reading'"),
    ({"subject": "a b"}, "invalid subject 'a b'"),
    ({"site": "<script>"}, "invalid site '<script>'"),
    ({"room": "x" * 65}, "invalid room"),
    ({"source": "device/../x"}, "invalid source 'device/../x'"),
    ({"source": "reading"}, "expected device/ID, reactor/NAME"),
])
def test_a_malformed_filter_is_refused_naming_it(params, message):
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[")):
        StreamFilter.of(params)


def test_a_filter_takes_facts_by_type_subject_source_site_and_room():
    fact = reading("t-1")
    assert StreamFilter(type="reading.v1", subject="t-1", site="hq", room="lab", source="device/t-1").takes(
        fact, "hq", "lab")
    assert not StreamFilter(room="office").takes(fact, "hq", "lab")
    assert not StreamFilter(type="alert.raised.v1").takes(fact, "hq", "lab")
    assert not StreamFilter(source="reactor/threshold").takes(fact, "hq", "lab")


def test_a_client_takes_at_most_its_rate_a_second_and_counts_the_rest():
    client = StreamClient(StreamFilter())
    admitted = sum(client.admits(100.0 + n / 10_000) for n in range(1000))
    assert admitted == RATE and client.skipped == 1000 - RATE
    assert client.admits(101.5)  # a new second
    assert client.take_skipped() == 1000 - RATE and client.skipped == 0 and client.skipped_total == 1000 - RATE


def test_a_client_that_does_not_read_holds_at_most_its_queue_limit():
    client = StreamClient(StreamFilter())
    for second in range(20):
        for _ in range(RATE):
            if client.admits(float(second)):
                client.put({"n": second})
    assert len(client.queue) == QUEUE_LIMIT
    assert client.skipped_total == 20 * RATE - QUEUE_LIMIT


async def test_clients_get_only_what_their_filters_take_and_the_counts_survive_closing():
    clients = Clients(limit=2)
    everything = clients.add(StreamFilter())
    alerts = clients.add(StreamFilter(type="alert.raised.v1"))
    assert everything and alerts and clients.add(StreamFilter()) is None  # the limit
    cause = reading("t-1")
    for fact in (cause, alert(cause)):
        clients.offer(fact, now=10.0)
    await asyncio.wait_for(alerts.wait(5), 1)
    assert [row["type"] for row in everything.take()] == ["reading.v1", "alert.raised.v1"]
    [row] = alerts.take()
    assert row["type"] == "alert.raised.v1" and row["causationid"] == cause.id and row["site"] == "hq"
    assert set(row) == {"id", "type", "subject", "source", "time", "site", "room", "summary", "correlationid",
                        "causationid"}
    for _ in range(RATE + 5):
        clients.offer(reading("t-2"), now=10.5)  # the same second: two of the first client's RATE are taken
    assert clients.skipped_total == 7 and clients.queued == RATE - 2
    clients.close(everything)
    assert clients.skipped_total == 7 and len(clients.open) == 1


async def test_ending_a_client_wakes_its_stream():
    client = StreamClient(StreamFilter())
    waiting = asyncio.create_task(client.wait(10))
    await asyncio.sleep(0)
    client.end()
    await asyncio.wait_for(waiting, 1)
    assert client.closed


def test_an_event_is_one_data_line_whatever_the_strings_hold():
    text = sse("fact", {"summary": "a\nb\r\u2028</script>"})
    assert text.startswith("event: fact\ndata: ") and text.endswith("\n\n") and text.count("\n") == 3
    assert json.loads(text.split("data: ", 1)[1]) == {"summary": "a\nb\r\u2028</script>"}
