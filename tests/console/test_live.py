import json
from collections import Counter

from gateway.console.live import LiveState
from gateway.counters import counters_message
from gateway.manifest import ServiceSpec
from gateway.transport import Message
from tests.console.facts import alert, message, reading

INGEST = ServiceSpec("ingest", ("devices/+/telemetry",), (), ("reading.v1", "event.rejected.v1"))
THRESHOLD = ServiceSpec("threshold", ("events/reading.v1/+",), ("reading.v1",), ("alert.raised.v1",))
CLIMATE = ServiceSpec("climate", (), ("alert.raised.v1", "door.opened.v1"), ("actuation.requested.v1",))
SINK = ServiceSpec("sink", ("events/#",), ("*",), ("event.rejected.v1",))


def live_with_services() -> LiveState:
    live = LiveState()
    for spec in (INGEST, THRESHOLD, SINK):
        live.take(spec.manifest(online=True))
    live.take(CLIMATE.manifest(online=False))
    return live


def test_the_map_draws_services_with_their_status_and_types_with_producers_consumers_and_loose_ends():
    live = live_with_services()
    services = {row["label"]: row for row in live.map()["services"]}
    assert services["climate"]["status"] == "offline" and services["threshold"]["status"] == "online"
    assert services["threshold"]["consumes"] == ["reading.v1"] and services["threshold"]["instance"]
    assert services["sink"]["stores_everything"] and services["sink"]["consumes"] == ["*"]
    types = {row["type"]: row for row in live.map()["types"]}
    assert types["reading.v1"]["producers"] == ["ingest"]
    assert types["reading.v1"]["consumers"] == ["threshold", "sink"]  # the sink consumes every type
    assert types["door.opened.v1"]["unproduced"] and not types["door.opened.v1"]["unconsumed"]
    assert types["actuation.requested.v1"]["unconsumed"] and not types["actuation.requested.v1"]["unproduced"]
    assert types["reading.v1"]["rate"] == 0.0


def test_live_facts_give_rates_device_groups_and_types_nobody_declares():
    live = live_with_services()
    for n in range(5):
        live.take(message(reading(f"t-{n % 2}")))
    live.take(message(reading("h-1", kind="humidity", metric="humidity", unit="%RH")))
    live.take(message(reading("x-1", kind=None)))
    live.take(message(alert(reading("t-0"))))
    drawn = live.map()
    types = {row["type"]: row for row in drawn["types"]}
    assert types["reading.v1"]["rate"] == 0.7  # 7 in the last 10 s
    assert types["alert.raised.v1"]["rate"] == 0.1
    assert drawn["devices"] == [{"group": "humidity", "count": 1, "emits": ["reading.v1"]},
                                {"group": "temperature", "count": 2, "emits": ["reading.v1"]},
                                {"group": "unknown", "count": 1, "emits": ["reading.v1"]}]


def test_the_version_grows_when_the_map_changes_shape_not_with_every_fact():
    live = live_with_services()
    live.take(message(reading("t-1")))
    version = live.version
    live.take(message(reading("t-1")))
    live.take(message(reading("t-1")))
    assert live.version == version
    live.take(THRESHOLD.manifest(online=False))
    assert live.version == version + 1
    live.take(Message("choreo/services/threshold", b"", retain=True))  # cleared: the service is gone
    assert "threshold" not in {row["label"] for row in live.map()["services"]}


def test_services_carry_their_latest_counters_and_what_is_not_a_report_is_counted():
    live = live_with_services()
    live.take(counters_message(THRESHOLD, Counter({"consumed": 3}), {"received": 4}))
    partition = ServiceSpec("threshold", (), (), (), partition="1-of-2")
    live.take(counters_message(partition, Counter({"consumed": 1}), {}))
    rows = {row["label"]: row for row in live.services()}
    assert rows["threshold"]["counters"] == {"received": 4, "consumed": 3} and rows["threshold"]["updated"]
    assert rows["threshold"]["status"] == "online"
    assert rows["threshold[1-of-2]"]["status"] == "unknown"  # counters, but no manifest
    assert rows["climate"]["counters"] == {} and rows["climate"]["updated"] is None
    for payload in (b"not json", b"[]", json.dumps({"name": "../x", "counters": {}}).encode(),
                    json.dumps({"name": "x", "counters": {"a": "1"}}).encode(),
                    json.dumps({"name": "x", "counters": {"a": 10**30}}).encode(),
                    json.dumps({"name": "x", "partition": "a b", "counters": {}}).encode()):
        live.take(Message("choreo/services/x/counters", payload, retain=True))
    assert live.counts["bad_counters"] == 6
    assert "x" not in {row["label"] for row in live.services()}


def test_what_cannot_be_taken_is_counted_and_never_raises():
    live = LiveState()
    fact = message(reading("t-1"))
    live.take(Message(fact.topic, fact.payload, retain=True))
    live.take(Message(fact.topic, b"{not json"))
    live.take(Message("events/reading.v1/other", fact.payload))  # not the topic its event belongs on
    live.take(fact)
    live.take(fact)
    live.take(Message("choreo/services/junk", b"[1]", retain=True))
    assert live.counts == Counter(ignored_retained=1, undecodable=2, facts_received=2, duplicates=1,
                                  bad_manifests=1)
    assert len(live.recent) == 1


def test_a_fact_of_a_type_known_from_its_announced_schema_is_taken_and_conflicts_are_listed():
    live = LiveState()
    schema = json.dumps({"type": "object", "required": ["door"]}).encode()
    live.take(Message("choreo/schemas/door.opened.v1/doorsvc", schema, retain=True))
    live.take(Message("choreo/schemas/door.opened.v1/othersvc", b'{"type": "object"}', retain=True))
    fact = {"specversion": "1.0", "id": "01J0000000000000000000DOOR", "source": "service/doorsvc",
            "type": "door.opened.v1", "subject": "door-1", "time": "2026-01-01T00:00:00Z",
            "correlationid": "01J0000000000000000000DOOR", "data": {"door": "front"}}
    live.take(Message("events/door.opened.v1/door-1", json.dumps(fact).encode()))
    assert live.counts["facts_received"] == 1
    assert live.map()["schema_conflicts"] == {"door.opened.v1": ["doorsvc", "othersvc"]}


def test_the_map_names_who_takes_a_version_upcast():
    live = LiveState()
    live.take(ServiceSpec("threshold", (), ("reading.v1",), ("alert.raised.v2",)).manifest(online=True))
    live.take(ServiceSpec("climate", (), ("alert.raised.v2", "alert.raised.v1"), (),
                          upcasts=(("alert.raised.v1", "alert.raised.v2"),)).manifest(online=True))
    types = {row["type"]: row for row in live.map()["types"]}
    assert types["alert.raised.v1"]["upcast"] == {"climate": "alert.raised.v2"}
    assert not types["alert.raised.v1"]["unproduced"]  # climate is served by v2
