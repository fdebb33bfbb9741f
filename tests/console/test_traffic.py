from collections import Counter

from gateway.console import traffic
from gateway.console.traffic import DeviceGroups, TypeRates
from tests.console.facts import alert, reading


def test_rates_count_the_last_ten_seconds_only():
    rates = TypeRates(Counter())
    assert rates.count("reading.v1", 1000.2)
    for second in range(1000, 1020):
        for _ in range(3):
            rates.count("reading.v1", second + 0.5)
    assert rates.rate("reading.v1", 1019.9) == 3.0
    assert rates.rate("reading.v1", 1025.0) == 1.2  # 1016-1025 is the window: 1016-1019 counted
    assert rates.rate("reading.v1", 1040.0) == 0.0
    assert rates.rate("alert.raised.v1", 1040.0) == 0.0


def test_types_past_the_limit_are_counted_not_kept(monkeypatch):
    monkeypatch.setattr(traffic, "MAX_TYPES", 1)
    counts: Counter[str] = Counter()
    rates = TypeRates(counts)
    rates.count("a.v1", 1.0)
    assert not rates.count("b.v1", 1.0)
    assert rates.types() == ["a.v1"] and counts["types_untracked"] == 1


def test_devices_are_grouped_by_kind_and_only_device_sources_count(monkeypatch):
    counts: Counter[str] = Counter()
    groups = DeviceGroups(counts)
    assert groups.see(reading("t-1", kind=None))  # a new group: unknown
    assert groups.see(reading("t-1"))  # now known as a temperature sensor
    assert not groups.see(reading("t-1"))
    assert not groups.see(alert(reading("t-1")))  # from a reactor
    assert groups.groups() == [{"group": "temperature", "count": 1, "emits": ["reading.v1"]}]
    monkeypatch.setattr(traffic, "MAX_DEVICES", 1)
    assert not groups.see(reading("t-2"))
    assert counts["devices_untracked"] == 1
