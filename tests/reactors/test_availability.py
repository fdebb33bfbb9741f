from gateway.events import DeviceOfflineV1, Measurement, ReadingV1
from gateway.settings import load_settings
from reactors import availability

SETTINGS = load_settings({"CHOREO_REACTORS_AVAILABILITY_SILENCE_SECONDS": "10"})
READING = ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=20)])


async def test_silence_makes_a_device_offline_and_its_next_reading_online(harness_for):
    async with harness_for(availability.build(SETTINGS)) as harness:
        last = harness.event(READING, subject="d-1")
        await harness.send(last)
        assert await harness.advance(9) == []
        [offline] = await harness.advance(2)
        [online] = await harness.send(READING, subject="d-1")
    assert offline.type == "device.offline.v1" and offline.data.reason == "silent"
    assert offline.causationid == last.id and offline.data.silent_seconds == 10
    assert online.type == "device.online.v1"


async def test_readings_in_time_keep_a_device_online(harness_for):
    async with harness_for(availability.build(SETTINGS)) as harness:
        for _ in range(5):
            await harness.send(READING, subject="d-1")
            assert await harness.advance(8) == []


async def test_a_device_that_said_goodbye_is_not_timed_out_again(harness_for):
    async with harness_for(availability.build(SETTINGS)) as harness:
        await harness.send(READING, subject="d-1")
        await harness.send(DeviceOfflineV1(), subject="d-1", source="gateway/ingest")
        assert await harness.advance(60) == []


async def test_its_own_silent_fact_coming_back_late_cancels_no_new_silence(harness_for):
    """In a backlog its own offline fact may come back after the device's next reading started a new timer."""
    async with harness_for(availability.build(SETTINGS)) as harness:
        await harness.send(READING, subject="d-1")
        [offline] = await harness.advance(11)
        [online] = await harness.send(READING, subject="d-1")
        assert await harness.send(offline) == []
        [again] = await harness.advance(11)
    assert again.type == "device.offline.v1" and again.causationid == online.causationid
