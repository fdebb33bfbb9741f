from datetime import timedelta

from gateway.console.recent import event_dict
from gateway.console.trace import chain
from tests.console.facts import alert, changed, reading, request


def emitted_after(event, base, milliseconds):
    return event.model_copy(update={"emittedtime": base + timedelta(milliseconds=milliseconds)})


def test_a_chain_merges_stored_and_live_events_with_the_time_each_step_took():
    root = reading("t-1")
    base = root.emittedtime
    raised = emitted_after(alert(root), base, 120)
    asked = emitted_after(request(raised, "fan-1"), base, 150.5)
    done = emitted_after(changed(asked, "fan-1"), base, 400)
    stored = [event_dict(e) for e in (asked, raised, root)]
    live = [event_dict(e) for e in (raised, done)]
    result = chain(stored, live)
    assert result["correlationid"] == root.id and result["live"] and not result["truncated"]
    steps = result["events"]
    assert [s["type"] for s in steps] == ["reading.v1", "alert.raised.v1", "actuation.requested.v1",
                                          "actuator.changed.v1"]
    assert [s["took_ms"] for s in steps] == [None, 120.0, 30.5, 249.5]
    assert [s["service"] for s in steps] == ["t-1", "threshold", "climate", "fan-1"]
    assert steps[1]["summary"] == "temperature_high: 29 Cel > 28 for 2s" and steps[1]["data"]["limit"] == 28.0


def test_a_step_whose_cause_is_missing_took_no_known_time_and_no_events_is_no_chain():
    root = reading("t-1")
    raised = alert(root)
    result = chain([event_dict(raised)], [])
    assert result["events"][0]["took_ms"] is None and not result["live"]
    assert chain([], []) is None


def test_a_long_chain_is_cut_and_says_so():
    root = reading("t-1")
    events = [event_dict(root)] + [event_dict(alert(root)) for _ in range(5)]
    result = chain(events, [], limit=3)
    assert len(result["events"]) == 3 and result["truncated"]
