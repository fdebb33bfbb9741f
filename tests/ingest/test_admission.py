"""Per-device admission: budgets, the token bucket, the throttled facts' life cycle, the service's hook."""
import os
import re
import subprocess
import sys
from collections import Counter
from itertools import count
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.events import DeviceThrottledV1, ReadingV1, decode_event
from gateway.fleet import Fleet, Registry
from gateway.ingest.admission import Admission, Budget, Budgets, TokenBucket, TopicKeys
from gateway.ingest.service import IngestService
from gateway.profiles.native import Native
from gateway.settings import IngestSettings, load_settings
from gateway.transport import ClientConfig, Delivery, MemoryBroker, MemoryTransport, Message
from gateway.transport.base import InboundQueue, TransportStats

FLEET = Fleet.model_validate({"interval": 1.0, "sites": [
    {"id": "hq", "rooms": [{"id": "lab", "devices": [{"kind": "temperature", "count": 2},
                                                     {"kind": "power", "interval": 2.0}]}]},
    {"id": "depot", "rooms": [{"id": "store", "devices": [{"kind": "temperature"}]}]},
]})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def budgets(**settings) -> Budgets:
    return Budgets(IngestSettings.model_validate(settings), FLEET.devices())


def test_the_device_key_of_a_native_topic_is_its_id():
    device_key = Native().device_key
    assert device_key("devices/lab-temperature-1/telemetry") == "lab-temperature-1"
    assert device_key("devices/x/status") == "x"
    assert device_key("devices/x") is None
    assert device_key("devices//telemetry") is None
    assert device_key("zigbee2mqtt/kitchen") is None


def test_topic_keys_remember_each_topics_device_up_to_a_limit():
    asked = []
    keys = TopicKeys(lambda topic: asked.append(topic) or Native().device_key(topic), limit=2)
    topics = ["devices/a/telemetry", "devices/a/telemetry", "devices/b/status", "devices/c/telemetry", "x/y"]
    assert [keys(topic) for topic in topics] == ["a", "a", "b", "c", None]
    assert asked == ["devices/a/telemetry", "devices/b/status", "devices/c/telemetry", "x/y"]
    assert keys("devices/c/telemetry") == "c" and asked[-1] == "devices/c/telemetry"  # beyond the limit: asked again
    assert len(keys.known) == 2


def test_a_fleet_device_gets_its_readings_per_second_times_the_headroom():
    # the burst: a minute at that rate, what piles up for the device while ingest is away
    assert budgets().of("lab-temperature-1") == Budget(5.0, 300.0)
    assert budgets().of("lab-power-1") == Budget(2.5, 150.0)  # one reading every 2 s
    assert budgets(budget_unknown_rate=3).of("stranger-1") == Budget(3.0, 180.0)
    assert budgets(budget_burst_seconds=0).of("lab-temperature-1") == Budget(5.0, 20.0)  # at least budget_burst
    assert budgets(budget_burst_seconds=0, budget_headroom=100).of("lab-temperature-1") == Budget(100, 100)


def test_a_budget_set_for_the_device_wins_over_its_kind_and_its_site():
    chosen = budgets(budgets={"device:lab-temperature-1": {"rate": 50, "burst": 100},
                              "kind:temperature": {"rate": 9, "burst": 10},
                              "site:hq": {"rate": 1, "burst": 2}})
    assert chosen.of("lab-temperature-1") == Budget(50, 100)
    assert chosen.of("lab-temperature-2") == Budget(9, 10)
    assert chosen.of("store-temperature-1") == Budget(9, 10)
    assert chosen.of("lab-power-1") == Budget(1, 2)


def test_a_budget_naming_a_kind_or_site_the_fleet_lacks_is_refused_at_start():
    with pytest.raises(ConfigError, match="'kind:thermometer': the fleet has no such kind; known: power, temperature"):
        budgets(budgets={"kind:thermometer": {"rate": 1, "burst": 1}})
    with pytest.raises(ConfigError, match="'site:lab': the fleet has no such site"):
        Budgets(IngestSettings.model_validate({"budgets": {"site:lab": {"rate": 1, "burst": 1}}}))


@pytest.mark.parametrize(("env", "message"), [
    ({"CHOREO_INGEST_BUDGETS": '{"sensor-1": {"rate": 1, "burst": 1}}'},
     "CHOREO_INGEST_BUDGETS: budget 'sensor-1': name it device:ID, kind:KIND or site:SITE"),
    ({"CHOREO_INGEST_BUDGETS": '{"device:sensor-1": {"rate": -1, "burst": 1}}'},
     "CHOREO_INGEST_BUDGETS (device:sensor-1.rate): Input should be greater than 0"),
    ({"CHOREO_INGEST_BUDGETS": '{"device:sensor-1": {"rate": 1}}'},
     "CHOREO_INGEST_BUDGETS (device:sensor-1.burst): Field required"),
    ({"CHOREO_INGEST_BUDGETS": "device:sensor-1=5"}, "CHOREO_INGEST_BUDGETS: expected a JSON object"),
    ({"CHOREO_INGEST_BUDGET_HEADROOM": "0.5"},
     "CHOREO_INGEST_BUDGET_HEADROOM: Input should be greater than or equal to 1"),
])
def test_a_bad_budget_setting_is_refused_with_a_clear_message(env, message):
    with pytest.raises(ConfigError) as refused:
        load_settings(env, path="/dev/null")
    assert message in refused.value.message


def test_budgets_are_read_from_choreo_toml(tmp_path):
    file = tmp_path / "choreo.toml"
    file.write_text('[ingest]\nbudget_headroom = 3\n[ingest.budgets."device:boiler-1"]\nrate = 20\nburst = 40\n')
    settings = load_settings({}, path=file).ingest
    assert settings.budget_headroom == 3 and settings.budgets["device:boiler-1"].rate == 20


def test_the_token_bucket_allows_the_burst_then_the_rate():
    bucket = TokenBucket(Budget(rate=2, burst=3), now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.25) is False  # half a token
    assert bucket.take(0.5) is True
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # refilled to the burst, no more


def admission(clock: Clock, **settings) -> tuple[Admission, Counter[str]]:
    settings.setdefault("budget_burst_seconds", 0)  # a burst of budget_burst (20) keeps the counts small
    counts: Counter[str] = Counter()
    sequence = count(1)
    return Admission(budgets(**settings), counts, lambda: next(sequence), Registry(FLEET).describe, clock), counts


def flood(admission: Admission, device: str, messages: int) -> int:
    return sum(not admission.admits(device) for _ in range(messages))


def test_a_flooding_device_is_shed_and_counted_while_the_others_pass():
    clock = Clock()
    gate, counts = admission(clock)
    assert flood(gate, "lab-temperature-1", 1000) == 980  # the burst of 20 passes
    assert all(gate.admits("lab-temperature-2") for _ in range(20))
    assert counts["shed"] == 980
    gate.reports()
    assert counts["shed:lab-temperature-1"] == 980 and "shed:lab-temperature-2" not in counts


def test_throttled_facts_say_started_then_at_most_once_a_period_then_ended():
    clock = Clock()
    gate, counts = admission(clock, throttle_report_seconds=10)
    assert gate.reports() == []
    flood(gate, "lab-temperature-1", 120)
    [started] = gate.reports()
    assert started.type == "device.throttled.v1" and started.subject == "lab-temperature-1"
    assert started.source == "gateway/ingest"
    assert isinstance(started.data, DeviceThrottledV1)
    assert (started.data.phase, started.data.shed, started.data.shed_total) == ("started", 100, 100)
    assert (started.data.rate, started.data.burst, started.data.site, started.data.room) == (5.0, 20.0, "hq", "lab")

    clock.now += 5
    flood(gate, "lab-temperature-1", 100)  # 20 tokens came back: 25 earned, the burst caps them
    assert gate.reports() == []  # not a period since the last fact
    clock.now += 5.01
    flood(gate, "lab-temperature-1", 100)
    [continuing] = gate.reports()
    assert (continuing.data.phase, continuing.data.shed, continuing.data.shed_total) == ("continuing", 160, 260)

    clock.now += 9
    assert gate.admits("lab-temperature-1")  # within budget again
    assert gate.reports() == []  # nothing shed since the last fact, and not yet a quiet period
    clock.now += 1.01
    [ended] = gate.reports()
    assert (ended.data.phase, ended.data.shed, ended.data.shed_total) == ("ended", 0, 260)
    assert gate.reports() == []
    assert counts["shed:lab-temperature-1"] == 260
    assert started.sequence < continuing.sequence < ended.sequence
    assert decode_event(ended.to_json()) == ended


def test_messages_without_a_valid_device_share_one_bucket():
    clock = Clock()
    gate, counts = admission(clock)
    assert flood(gate, None, 30) == 10
    assert flood(gate, "no such/device", 5) == 5  # the same bucket, already empty
    [fact] = gate.reports()
    assert fact.subject == "unknown" and fact.data.shed_total == 15
    assert counts["admission_shared_bucket"] == 35


def test_a_message_refused_by_admission_is_acknowledged_and_never_queued():
    stats = TransportStats()
    queue = InboundQueue(limit=10, stats=stats)
    queue.admit = lambda message: message.topic != "devices/flood-1/telemetry"
    acknowledged = []
    for topic in ("devices/flood-1/telemetry", "devices/probe-1/telemetry"):
        queue.offer(Delivery(Message(topic, b"{}"), ack=lambda topic=topic: acknowledged.append(topic)))
    assert acknowledged == ["devices/flood-1/telemetry"]
    assert len(queue) == 1 and stats.received == 2 and stats.dropped == 0


async def test_the_service_sheds_before_queueing_decoding_or_publishing():
    broker = MemoryBroker()
    device = MemoryTransport(broker, ClientConfig("lab-temperature-1"))
    observer = MemoryTransport(broker, ClientConfig("observer"))
    async with MemoryTransport(broker, ClientConfig("ingest")) as transport, observer, device:
        await observer.subscribe("events/#")
        service = IngestService(transport, Registry(FLEET), budgets(budget_burst_seconds=0))
        await transport.subscribe("devices/+/telemetry")
        for seq in range(50):
            device.publish(Message("devices/lab-temperature-1/telemetry", b'{"seq": %d, "temperature": 21.5}' % seq))
        # An invalid payload beyond the budget is shed before decoding: it becomes no rejection.
        device.publish(Message("devices/lab-temperature-1/telemetry", b"not json"))
        device.publish(Message("devices/lab-temperature-2/telemetry", b'{"seq": 1, "temperature": 21.5}'))
        while (delivery := await transport.receive(0)) is not None:
            service.process(delivery)
        published = []
        while (delivery := await observer.receive(0.01)) is not None:
            published.append(decode_event(delivery.message.payload))
        assert [event.subject for event in published] == ["lab-temperature-1"] * 20 + ["lab-temperature-2"]
        assert all(isinstance(event.data, ReadingV1) for event in published)
        assert service.counts["shed"] == 31 and service.counts["rejected"] == 0

        [fact] = service.admission.reports()
        assert (fact.subject, fact.data.phase, fact.data.shed) == ("lab-temperature-1", "started", 31)


def test_the_flow_control_pages_examples_hold(tmp_path):
    page = (Path(__file__).resolve().parents[2] / "docs" / "flow-control.md").read_text()
    [toml] = re.findall(r"```toml\n(.*?)```", page, re.DOTALL)
    (tmp_path / "choreo.toml").write_text(toml)
    chosen = Budgets(load_settings({}, path=tmp_path / "choreo.toml").ingest, FLEET.devices())
    assert chosen.of("lab-fan-1") == Budget(20, 50) and chosen.of("lab-power-1") == Budget(1, 5)
    [variable] = re.findall(r"`CHOREO_INGEST_BUDGETS='(.*?)'`", page)
    budgets_set = load_settings({"CHOREO_INGEST_BUDGETS": variable}, path="/dev/null").ingest.budgets
    assert budgets_set["device:lab-fan-1"].rate == 20
    messages = re.findall(r"`(invalid settings: CHOREO_INGEST_BUDGETS .*?)`", page)
    assert messages
    for message in messages:
        with pytest.raises(ConfigError) as refused:
            load_settings({"CHOREO_INGEST_BUDGETS": variable.replace('"rate": 20', '"rate": 0')}, path="/dev/null")
        assert refused.value.message == message


def test_ingest_refuses_a_bad_budget_before_it_connects(tmp_path):
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[[sites]]\nid = "hq"\n[[sites.rooms]]\nid = "lab"\ndevices = [{ kind = "temperature" }]\n')
    env = {**os.environ, "CHOREO_FLEET_FILE": str(fleet), "CHOREO_MQTT_PORT": "1",  # nothing listens there
           "CHOREO_INGEST_BUDGETS": '{"kind:thermometer": {"rate": 1, "burst": 1}}'}
    refused = subprocess.run([sys.executable, "-m", "gateway.cli", "ingest"], env=env, capture_output=True,
                             text=True, timeout=60, cwd=tmp_path)
    assert refused.returncode == 2
    assert "choreo ingest: invalid settings: ingest.budgets: 'kind:thermometer': the fleet has no such kind; " \
           "known: temperature" in refused.stderr


async def test_a_retained_document_is_admitted_past_its_devices_budget():
    """After a restart the session's backlog spends a Homie device's budget before the broker sends
    its retained $description, which every later value of the device needs."""
    async with MemoryTransport(MemoryBroker(), ClientConfig("ingest")) as transport:
        service = IngestService(transport, Registry(FLEET), budgets(budget_burst_seconds=0))
        value = Message("homie/5/super-car/engine/temperature", b"21.5")
        assert sum(service.admits(value) for _ in range(100)) < 100
        description = "homie/5/super-car/$description"
        assert service.admits(Message(description, b"{}", retain=True))
        assert not service.admits(Message(description, b"{}"))  # published now: a message like any other
