from gateway.events import Measurement, ReadingV1
from gateway.settings import load_settings
from reactors import threshold

SETTINGS = load_settings({"CHOREO_REACTORS_THRESHOLD_HIGH": "28", "CHOREO_REACTORS_THRESHOLD_HYSTERESIS": "1",
                          "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "2"})


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
    assert alert.type == "alert.raised.v1" and alert.data.alert == "temperature.high"
    assert (alert.causationid, alert.correlationid) == (cause.id, cause.correlationid)
    assert (alert.data.value, alert.data.limit, alert.data.above_seconds) == (29.5, 28.0, 2.0)
    assert alert.time == cause.time  # a fact carries its cause's time, so a replay rebuilds it exactly


async def test_clears_only_below_the_limit_minus_hysteresis(harness_for):
    async with harness_for(threshold.build(SETTINGS)) as harness:
        facts = await feed(harness, [29, 29, 29, 27.5, 27.2, 26.9, 26])
    assert [(f.type, f.data.value) for f in facts] == [("alert.raised.v1", 29.0), ("alert.cleared.v1", 26.9)]
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
                              "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "2"})
    async with harness_for(threshold.build(settings)) as harness:
        plant = await feed(harness, [30, 36], room="plant", subject="p-1")
        dry = await feed(harness, [25, 33, 36], metric="humidity", unit="%RH", subject="h-1")
    assert [(f.data.alert, f.data.value) for f in plant] == [("temperature.high", 36.0)]
    assert [(f.type, f.data.alert, f.data.value) for f in dry] == [
        ("alert.raised.v1", "humidity.low", 25.0), ("alert.cleared.v1", "humidity.low", 36.0)]
    assert plant[0].data.room == "plant"


async def test_state_survives_a_restart(harness_for):
    async with harness_for(threshold.build(SETTINGS)) as harness:
        await feed(harness, [29, 29, 29])  # raised
        harness.restart()
        again = await feed(harness, [29.5])
        cleared = await feed(harness, [20])
    assert again == [] and [f.type for f in cleared] == ["alert.cleared.v1"]
