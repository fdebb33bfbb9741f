import random

from gateway.events import Measurement, ReadingV1
from gateway.settings import load_settings
from reactors import anomaly

SETTINGS = load_settings({"CHOREO_REACTORS_ANOMALY_MIN_SAMPLES": "20", "CHOREO_REACTORS_ANOMALY_SIGMAS": "5",
                          "CHOREO_REACTORS_ANOMALY_STUCK_SECONDS": "30"})


def temperature(value: float) -> ReadingV1:
    return ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=value)])


async def test_a_reading_far_outside_recent_behaviour_is_an_outlier_until_it_returns(harness_for):
    rng = random.Random(3)
    async with harness_for(anomaly.build(SETTINGS)) as harness:
        normal = []
        for _ in range(30):
            normal += await harness.send(temperature(21 + rng.gauss(0, 0.2)), subject="t-1")
            await harness.advance(1)
        [raised] = await harness.send(temperature(35), subject="t-1")
        await harness.advance(1)
        [cleared] = await harness.send(temperature(21.1), subject="t-1")
    assert normal == []
    assert (raised.type, raised.data.alert, raised.data.value) == ("alert.raised.v1", "temperature.outlier", 35.0)
    assert cleared.type == "alert.cleared.v1"


async def test_an_unchanged_value_for_too_long_is_a_stuck_sensor(harness_for):
    async with harness_for(anomaly.build(SETTINGS)) as harness:
        facts = []
        for _ in range(5):
            facts += await harness.send(temperature(20.5), subject="t-1")
            await harness.advance(10)
        facts += await harness.send(temperature(20.7), subject="t-1")
    assert [(f.type, f.data.alert) for f in facts] == [("alert.raised.v1", "temperature.stuck"),
                                                      ("alert.cleared.v1", "temperature.stuck")]
    assert facts[0].data.above_seconds == 30


async def test_a_lasting_level_shift_becomes_the_new_normal(harness_for):
    async with harness_for(anomaly.build(SETTINGS)) as harness:
        facts = []
        for step in range(80):
            value = 21.0 + 0.2 * (step % 3) + (10 if step >= 30 else 0)  # from step 30 on, 10 Cel warmer for good
            facts += await harness.send(temperature(value), subject="t-1")
            await harness.advance(1)
    assert [(f.type, f.data.alert) for f in facts] == [("alert.raised.v1", "temperature.outlier"),
                                                      ("alert.cleared.v1", "temperature.outlier")]


async def test_values_in_coarse_steps_do_not_flap(harness_for):
    async with harness_for(anomaly.build(SETTINGS)) as harness:
        facts = []
        for step in range(40):
            facts += await harness.send(temperature(21.0 + 0.1 * (step % 2)), subject="t-1")
            await harness.advance(1)
    assert facts == []


def test_min_samples_may_not_exceed_the_window():
    import pytest

    from gateway.errors import ConfigError

    settings = load_settings({"CHOREO_REACTORS_ANOMALY_MIN_SAMPLES": "100", "CHOREO_REACTORS_ANOMALY_WINDOW": "60"})
    with pytest.raises(ConfigError, match=r"reactors.anomaly: min_samples \(100\) must not exceed window \(60\)"):
        anomaly.build(settings)
