from gateway.events import Measurement, ReadingV1
from gateway.settings import load_settings
from reactors import threshold

V2_ONLY = {"CHOREO_REACTORS_THRESHOLD_ALERT_VERSIONS": "v2"}
SETTINGS = load_settings({"CHOREO_REACTORS_THRESHOLD_HIGH": "28", "CHOREO_REACTORS_THRESHOLD_HYSTERESIS": "1",
                          "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "2", **V2_ONLY})


def reading(value: float, metric: str = "temperature", unit: str = "Cel", room: str | None = None) -> ReadingV1:
    return ReadingV1(measurements=[Measurement(name=metric, unit=unit, value=value)],
                     site="hq" if room else None, room=room)


async def feed(harness, values, subject="t-1", step=1.0, **options):
    facts = []
    for value in values:
        facts += await harness.send(reading(value, **options), subject=subject)
        await harness.advance(step)
    return facts


async def test_raises_only_after_the_minimum_duration_and_names_its_cause(harness_for):
    async with harness_for(threshold.build(SETTINGS)) as harness:
        first = await harness.send(reading(29), subject="t-1")
        await harness.advance(1)
        assert first + await harness.send(reading(29), subject="t-1") == []
        await harness.advance(1)
        cause = harness.event(reading(29.5), subject="t-1")
        [alert] = await harness.send(cause)
    assert alert.type == "alert.raised.v2" and alert.data.alert == "temperature.high"
    assert (alert.data.severity, alert.data.rule) == ("warning", "temperature > 28 for 2s")
    assert (alert.causationid, alert.correlationid) == (cause.id, cause.correlationid)
    assert (alert.data.value, alert.data.limit, alert.data.above_seconds) == (29.5, 28.0, 2.0)
    assert alert.time == cause.time  # a fact carries its cause's time, so a replay rebuilds it exactly


async def test_clears_only_below_the_limit_minus_hysteresis(harness_for):
    async with harness_for(threshold.build(SETTINGS)) as harness:
        facts = await feed(harness, [29, 29, 29, 27.5, 27.2, 26.9, 26])
    assert [(f.type, f.data.value) for f in facts] == [("alert.raised.v2", 29.0), ("alert.cleared.v1", 26.9)]
    assert facts[1].data.limit == 27.0


async def test_a_dip_restarts_the_duration_and_subjects_are_independent(harness_for):
    async with harness_for(threshold.build(SETTINGS)) as harness:
        dipped = await feed(harness, [29, 27.5, 29, 29], subject="a")
        other = await feed(harness, [29, 29, 29], subject="b")
    assert dipped == [] and [f.subject for f in other] == ["b"]


async def test_low_limits_and_room_rules(harness_for, tmp_path):
    config = tmp_path / "choreo.toml"
    config.write_text('[[reactors.threshold.rules]]\nmetric = "temperature"\nhigh = 35\nroom = "plant"\n'
                      'min_duration = 0\n'
                      '[[reactors.threshold.rules]]\nmetric = "humidity"\nlow = 30\nhysteresis = 5\n'
                      'min_duration = 0\n')
    settings = load_settings({"CHOREO_CONFIG": str(config), "CHOREO_REACTORS_THRESHOLD_HIGH": "28",
                              "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "2", **V2_ONLY})
    async with harness_for(threshold.build(settings)) as harness:
        plant = await feed(harness, [30, 36], room="plant", subject="p-1")
        dry = await feed(harness, [25, 33, 36], metric="humidity", unit="%RH", subject="h-1")
    assert [(f.data.alert, f.data.value) for f in plant] == [("temperature.high", 36.0)]
    assert [(f.type, f.data.alert, f.data.value) for f in dry] == [
        ("alert.raised.v2", "humidity.low", 25.0), ("alert.cleared.v1", "humidity.low", 36.0)]
    assert plant[0].data.room == "plant"


async def test_state_survives_a_restart(harness_for):
    async with harness_for(threshold.build(SETTINGS)) as harness:
        await feed(harness, [29, 29, 29])  # raised
        harness.restart()
        again = await feed(harness, [29.5])
        cleared = await feed(harness, [20])
    assert again == [] and [f.type for f in cleared] == ["alert.cleared.v1"]


async def test_in_the_migration_window_each_alert_goes_out_as_v2_and_v1_under_one_id(harness_for):
    settings = load_settings({"CHOREO_REACTORS_THRESHOLD_HIGH": "28", "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "0",
                              "CHOREO_REACTORS_THRESHOLD_SEVERITY": "critical"})
    reactor = threshold.build(settings)
    assert {"alert.raised.v1", "alert.raised.v2"} <= reactor.emits
    async with harness_for(reactor) as harness:
        cause = harness.event(reading(30), subject="t-1")
        facts = await harness.send(cause)
    assert sorted(f.type for f in facts) == ["alert.raised.v1", "alert.raised.v2"]
    v1, v2 = sorted(facts, key=lambda f: f.type)
    assert v1.id == v2.id and v1.sequence == v2.sequence and v1.causationid == v2.causationid == cause.id
    assert v2.data.severity == "critical" and v1.data == v2.data.to_v1()


def test_the_versions_it_emits_are_a_setting():
    only_v1 = threshold.build(load_settings({"CHOREO_REACTORS_THRESHOLD_ALERT_VERSIONS": "v1"}))
    assert "alert.raised.v2" not in only_v1.emits and "alert.raised.v1" in only_v1.emits
