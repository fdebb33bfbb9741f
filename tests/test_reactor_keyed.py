"""Keyed state: a checkpoint writes the states handlers changed, a failed handler leaves no trace,
and a restart continues from what was written."""
from pydantic import BaseModel

from gateway.events import Measurement, ReadingV1
from gateway.reactor import Reactor
from gateway.reactor.keyed import KeyedStates
from gateway.testing import ReactorHarness


class Tally(BaseModel):
    n: int = 0


def reading(value: float) -> ReadingV1:
    return ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=value)])


def tally() -> Reactor:
    """Counts readings above 0 per subject; a reading of 0 changes nothing; 13 counts, then raises."""
    reactor = Reactor("tally", state=Tally)

    @reactor.on(ReadingV1)
    def count(event, ctx):
        value = event.data.measurements[0].value
        if value:
            ctx.state.n += 1
        else:
            _ = ctx.state  # used, left as it was
        if value == 13:
            raise RuntimeError("unlucky")

    return reactor


async def test_a_checkpoint_writes_only_the_states_a_handler_changed():
    harness = ReactorHarness(tally())
    await harness.send(reading(1), subject="a")
    await harness.send(reading(0), subject="b")  # created empty: written once
    assert harness.runner.states.changes() == {"a": '{"n":1}', "b": '{"n":0}'}
    await harness.send(reading(0), subject="a")
    await harness.send(reading(0), subject="b")
    assert harness.runner.states.changes() == {}
    await harness.send(reading(5), subject="b")
    assert harness.runner.states.changes() == {"b": '{"n":1}'}


async def test_a_failed_handler_changes_no_state_and_leaves_nothing_to_write():
    harness = ReactorHarness(tally())
    await harness.send(reading(1), subject="a")
    harness.runner.checkpoint()
    [rejected] = await harness.send(reading(13), subject="a")
    assert rejected.type == "event.rejected.v1"
    assert harness.runner.states["a"].n == 1 and harness.runner.states.changes() == {}
    await harness.send(reading(1), subject="a")  # the state restored from the journal goes on counting
    assert harness.runner.states.changes() == {"a": '{"n":2}'}


async def test_a_failed_handler_on_a_new_key_leaves_no_state():
    harness = ReactorHarness(tally())
    await harness.send(reading(13), subject="new")
    assert "new" not in harness.runner.states.states and harness.runner.states.changes() == {}


async def test_a_restart_continues_from_the_states_written_even_when_the_last_ones_changed_nothing():
    harness = ReactorHarness(tally())
    for value in (1, 1, 0):
        await harness.send(reading(value), subject="a")
    harness.restart()
    await harness.send(reading(0), subject="a")
    await harness.send(reading(1), subject="a")
    harness.restart()
    assert harness.runner.states["a"].n == 3


def test_a_state_taken_outside_any_handler_is_written_as_it_is_at_the_checkpoint():
    states = KeyedStates(Tally, {"a": {"n": 1}})
    states.get("a").n = 7  # a tool or a test, not a handler: no journal sees the change
    assert states.changes() == {"a": '{"n":7}'}
    states.begin()
    states.get("a")  # a handler that leaves it as it was
    states.end()
    assert states.changes() == {}


def test_the_json_written_is_the_models_own():
    states = KeyedStates(Tally, {})
    states.begin()
    states.get("a").n = 2
    states.end()
    assert states.changes() == {"a": Tally(n=2).model_dump_json()}
