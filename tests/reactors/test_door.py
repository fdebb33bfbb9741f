from gateway.events import Measurement, ReadingV1
from gateway.settings import load_settings
from reactors import door

SETTINGS = load_settings({"CHOREO_REACTORS_DOOR_LIMIT_SECONDS": "30"})


def contact(open_: bool) -> ReadingV1:
    return ReadingV1(measurements=[Measurement(name="door_open", unit="/", value=1 if open_ else 0)],
                     site="hq", room="office")


async def test_open_too_long_raises_on_time_and_closing_clears(harness_for):
    async with harness_for(door.build(SETTINGS)) as harness:
        opened = harness.event(contact(True), subject="office-door-1")
        assert await harness.send(opened) == []
        assert await harness.advance(29) == []
        [raised] = await harness.advance(2)
        assert await harness.send(contact(True), subject="office-door-1") == []  # still open: nothing new
        [cleared] = await harness.send(contact(False), subject="office-door-1")
    assert raised.type == "alert.raised.v1" and raised.data.alert == "door.open_too_long"
    assert raised.causationid == opened.id
    assert (raised.time - opened.time).total_seconds() == 30  # stamped with the deadline, not when it was noticed
    assert cleared.type == "alert.cleared.v1" and cleared.data.room == "office"


async def test_a_door_closed_in_time_raises_nothing(harness_for):
    async with harness_for(door.build(SETTINGS)) as harness:
        await harness.send(contact(True), subject="office-door-1")
        await harness.advance(10)
        assert await harness.send(contact(False), subject="office-door-1") == []
        assert await harness.advance(60) == []


async def test_the_timer_survives_a_restart(harness_for):
    async with harness_for(door.build(SETTINGS)) as harness:
        await harness.send(contact(True), subject="office-door-1")
        await harness.advance(10)
        harness.restart()
        [raised] = await harness.advance(25)
    assert raised.data.alert == "door.open_too_long"
