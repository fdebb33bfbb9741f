from gateway.console.recent import RecentFacts, event_dict, fact_row
from gateway.history import rfc3339
from gateway.sink.schema import nanoseconds
from tests.console.facts import alert, reading, rejected


def test_the_buffer_keeps_the_latest_facts_by_id_and_by_correlation_and_forgets_the_oldest():
    recent = RecentFacts(limit=3)
    first = reading("t-1")
    raised = alert(first)
    for fact in (first, raised, reading("t-2")):
        assert recent.add(fact)
    assert not recent.add(first)  # seen already
    assert recent.correlation_of(raised.id) == first.id
    assert recent.correlation_of(first.id) == first.id
    assert [event.id for event in recent.chain(first.id)] == [first.id, raised.id]
    recent.add(reading("t-3"))  # the oldest, `first`, goes
    assert len(recent) == 3 and recent.correlation_of(first.id) == first.id  # its chain is still kept
    assert [event.id for event in recent.chain(first.id)] == [raised.id]
    recent.add(reading("t-4"))
    assert recent.correlation_of(first.id) is None and recent.chain(first.id) == []


def test_rejections_are_kept_as_rows_of_the_rejections_page():
    recent = RecentFacts(rejected_limit=2)
    facts = [rejected(f"bad-{n}") for n in range(3)]
    for fact in facts:
        recent.add(fact)
    assert [row["subject"] for row in recent.rejected] == ["bad-1", "bad-2"]
    assert recent.rejected[-1] == {"time": event_dict(facts[2])["time"], "rejected_by": "gateway/ingest",
                                   "reason": "field 'temperature' must be a number, got str",
                                   "topic": "devices/bad-2/telemetry", "excerpt": '{"temperature": "hot"}',
                                   "subject": "bad-2", "id": facts[2].id}


def test_a_live_fact_looks_like_a_stored_one():
    fact = reading("t-1")
    assert event_dict(fact)["time"] == rfc3339(nanoseconds(fact.time))  # as rows_to_events writes it
    row = fact_row(fact)
    assert row["summary"] == "temperature=21.5 Cel" and (row["site"], row["room"]) == ("hq", "lab")
