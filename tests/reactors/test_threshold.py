from gateway.settings import ThresholdSettings
from reactors.threshold import ThresholdReactor
from tests.test_reactor import message_of, reading, run_through

SETTINGS = ThresholdSettings(metric="temperature", high=28.0, hysteresis=1.0, min_duration=2.0)


def types(events):
    return [e.type for e in events]


async def test_raises_only_after_staying_above_the_limit_for_the_minimum_duration():
    readings = [reading(29, at=0), reading(29, at=1), reading(29.5, at=2), reading(30, at=3)]
    emitted = await run_through(ThresholdReactor(SETTINGS), [message_of(r) for r in readings])
    assert types(emitted) == ["alert.raised.v1"]
    alert = emitted[0]
    assert alert.causationid == readings[2].id
    assert (alert.data.value, alert.data.limit, alert.data.above_seconds) == (29.5, 28.0, 2.0)


async def test_a_dip_below_the_limit_restarts_the_duration():
    readings = [reading(29, at=0), reading(27.5, at=1), reading(29, at=2), reading(29, at=3)]
    assert await run_through(ThresholdReactor(SETTINGS), [message_of(r) for r in readings]) == []


async def test_clears_only_below_limit_minus_hysteresis():
    readings = [reading(29, at=0), reading(29, at=2), reading(27.5, at=3), reading(27.2, at=4), reading(26.9, at=5), reading(26, at=6)]
    emitted = await run_through(ThresholdReactor(SETTINGS), [message_of(r) for r in readings])
    assert types(emitted) == ["alert.raised.v1", "alert.cleared.v1"]
    cleared = emitted[1]
    assert cleared.causationid == readings[4].id and cleared.data.limit == 27.0
    assert cleared.correlationid == readings[4].correlationid


async def test_each_subject_has_its_own_state():
    readings = [reading(29, at=0, subject="a"), reading(29, at=2, subject="b"), reading(29, at=2, subject="a")]
    emitted = await run_through(ThresholdReactor(SETTINGS), [message_of(r) for r in readings])
    assert [(e.type, e.subject) for e in emitted] == [("alert.raised.v1", "a")]


async def test_readings_without_the_metric_are_ignored():
    from gateway.events import Measurement, ReadingV1, new_event

    humidity = new_event(ReadingV1(measurements=[Measurement(name="humidity", unit="%RH", value=99)]),
                         source="device/h-1", subject="h-1")
    assert await run_through(ThresholdReactor(SETTINGS), [message_of(humidity)]) == []
