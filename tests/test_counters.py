import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from gateway.choreography import collect_manifests
from gateway.cli import main
from gateway.counters import CounterReports, counters_message
from gateway.errors import InvalidInput
from gateway.manifest import ServiceSpec
from gateway.service import EXIT_CONFIG
from gateway.topics import counters_topic, is_counters_topic
from gateway.transport import ClientConfig, MemoryBroker, MemoryTransport
from tests.helpers import async_wait_for

THRESHOLD = ServiceSpec("threshold", ("events/reading.v1/+",), ("reading.v1",), ("alert.raised.v1",))


def test_the_counters_topic_sits_below_the_manifest_of_the_service_or_its_partition():
    assert counters_topic("threshold") == "choreo/services/threshold/counters"
    assert counters_topic("threshold", "0-of-2") == "choreo/services/threshold/0-of-2/counters"
    assert is_counters_topic("choreo/services/threshold/counters")
    assert is_counters_topic("choreo/services/threshold/0-of-2/counters")
    assert not is_counters_topic("choreo/services/counters")  # a service named counters: its manifest
    assert not is_counters_topic("choreo/services/threshold/0-of-2")
    with pytest.raises(InvalidInput, match="invalid partition"):
        counters_topic("threshold", "a/b")


def test_a_report_holds_the_services_counts_and_its_transports_the_services_winning_a_shared_name():
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    message = counters_message(THRESHOLD, Counter({"received": 7, "emitted:alert.raised.v1": 2}),
                               {"received": 9, "dropped": 1}, lag_seconds=0.12345, now=moment)
    assert message.topic == "choreo/services/threshold/counters"
    assert (message.qos, message.retain) == (0, True)
    report = json.loads(message.payload)
    assert report["name"] == "threshold" and report["partition"] is None and report["instance"]
    assert report["time"] == "2026-01-02T03:04:05Z"
    assert report["counters"] == {"received": 7, "dropped": 1, "emitted:alert.raised.v1": 2, "lag_seconds": 0.123}
    assert report["transport"] == {"received": 9, "dropped": 1}


async def test_reports_are_published_at_start_periodically_and_at_the_stop():
    broker = MemoryBroker()
    counts: Counter[str] = Counter()
    async with MemoryTransport(broker, ClientConfig("threshold")) as transport:
        reports = CounterReports(transport, THRESHOLD, counts, lambda: 1.5, every=0.05)
        async with reports.running():
            counts["received"] = 3
            await async_wait_for(lambda: len(broker.history) >= 3, 5, "three periodic reports")
            counts["received"] = 4
    last = json.loads(broker.retained["choreo/services/threshold/counters"].payload)
    assert last["counters"]["received"] == 4 and last["counters"]["lag_seconds"] == 1.5
    assert last["transport"]["published"] >= 3
    assert {m.topic for m in broker.history} == {"choreo/services/threshold/counters"}


async def test_the_map_ignores_counters_published_below_the_manifests():
    broker = MemoryBroker()
    async with MemoryTransport(broker, ClientConfig("threshold")) as publisher:
        publisher.publish(THRESHOLD.manifest(online=True))
        publisher.publish(counters_message(THRESHOLD, Counter({"received": 1}), {}))
        partition = ServiceSpec("threshold", (), (), (), partition="0-of-2")
        publisher.publish(counters_message(partition, Counter(), {}))
    async with MemoryTransport(broker, ClientConfig("map")) as reader:
        [manifest] = await collect_manifests(reader, quiet=0.1)
    assert manifest.spec == THRESHOLD


@pytest.mark.parametrize("instance", ["counters", "../up", ""])
def test_a_sink_replica_may_not_be_named_like_the_counters_level_or_anything_but_an_id(instance, capsys,
                                                                                       monkeypatch):
    monkeypatch.setenv("CHOREO_SINK_GROUP", "store")
    assert main(["sink", "--instance", instance]) == EXIT_CONFIG
    assert "--instance" in capsys.readouterr().err
