from datetime import timedelta

from gateway.events import Measurement, ReadingV1
from gateway.settings import load_settings
from reactors import energy

SETTINGS = load_settings({"CHOREO_REACTORS_ENERGY_PERIOD_SECONDS": "60"})


def meter(wh: float) -> ReadingV1:
    return ReadingV1(measurements=[Measurement(name="power", unit="W", value=100),
                                   Measurement(name="energy", unit="Wh", value=wh)], site="hq", room="plant")


async def test_each_closed_period_gets_its_energy(harness_for):
    async with harness_for(energy.build(SETTINGS)) as harness:
        facts = []
        for wh in (10, 11, 12, 13, 14, 15):  # one reading every 20 s: 3 per period
            facts += await harness.send(meter(wh), subject="plant-power-1")
            await harness.advance(20)
    assert [f.data.energy_wh for f in facts] == [3.0]
    [fact] = facts
    assert fact.data.period_end - fact.data.period_start == timedelta(seconds=60)
    assert fact.data.room == "plant"


async def test_a_meter_restart_keeps_what_was_counted(harness_for):
    async with harness_for(energy.build(SETTINGS)) as harness:
        facts = []
        for wh in (100, 104, 1, 3, 5):  # restarted after 104
            facts += await harness.send(meter(wh), subject="m-1")
            await harness.advance(20)
    assert [f.data.energy_wh for f in facts] == [4.0 + 2.0]


async def test_late_readings_are_dropped_and_a_silence_spans_its_periods(harness_for):
    async with harness_for(energy.build(SETTINGS)) as harness:
        facts = []
        for seq, (wh, wait) in enumerate([(100, 20), (110, 20), (120, 20), (130, 200)], start=1):
            facts += await harness.send(meter(wh), subject="m-1", sequence=seq)
            await harness.advance(wait)
        facts += await harness.send(meter(105), subject="m-1", sequence=2)  # late: must not look like a restart
        facts += await harness.send(meter(150), subject="m-1", sequence=5)
    assert [f.data.energy_wh for f in facts] == [30.0, 20.0]
    assert (facts[1].data.period_end - facts[1].data.period_start).total_seconds() > 60


async def test_counters_near_the_float_limit_are_refused_and_leave_a_state_that_restarts(harness_for):
    async with harness_for(energy.build(SETTINGS)) as harness:
        facts = []
        for wh in (-1.7e308, 1.7e308, 0.0):
            facts += await harness.send(meter(wh), subject="plant-power-1")
        harness.restart()  # the checkpointed state must load again (an infinite total would not)
        facts += await harness.send(meter(1.0), subject="plant-power-1")
    assert [f.type for f in facts] == ["event.rejected.v1"]
    assert "overflows" in facts[0].data.reason
