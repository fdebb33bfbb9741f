from datetime import timedelta

from gateway.events import Measurement, ReadingV1
from gateway.settings import load_settings
from reactors import energy

SETTINGS = load_settings({"CHOREO_ENERGY_PERIOD_SECONDS": "60"})


def meter(wh: float) -> ReadingV1:
    return ReadingV1(measurements=[Measurement(name="power", unit="W", value=100), Measurement(name="energy", unit="Wh", value=wh)],
                     site="hq", room="plant")


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
