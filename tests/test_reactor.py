"""The reactor runtime: registry, envelopes, dedupe, ordering, errors, checkpoints and replay."""
import asyncio
import sqlite3
from datetime import timedelta

import pytest
from pydantic import BaseModel

from gateway.errors import Refused, TransportError
from gateway.events import AlertRaisedV1, Event, Measurement, ReadingV1, decode_event, new_event
from gateway.reactor import Reactor, ReactorRunner
from gateway.state import Changes, StateStore
from gateway.testing import ReactorHarness
from gateway.topics import event_topic
from gateway.transport import ClientConfig, Delivery, MemoryBroker, MemoryTransport, Message
from tests.helpers import async_wait_for


def reading(value: float) -> ReadingV1:
    return ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=value)])


def echo() -> Reactor:
    """Raises an alert for every reading; fails on 13; emits an undeclared type on 99."""
    reactor = Reactor("echo")

    @reactor.on(ReadingV1, emits=[AlertRaisedV1])
    def react(event, ctx):
        value = event.data.measurements[0].value
        if value == 13:
            raise RuntimeError("unlucky")
        if value == 99:
            return [reading(value)]
        ctx.state_of("count")  # touch state so checkpoints carry something
        return [AlertRaisedV1(alert="echo", metric="temperature", value=value, limit=0, unit="Cel", above_seconds=0)]

    return reactor


def message_of(event: Event) -> Message:
    return Message(event_topic(event.type, event.subject), event.to_json())


def test_the_registry_declares_what_a_reactor_consumes_and_emits():
    reactor = echo()
    assert reactor.consumes == ("reading.v1",) and reactor.emits == {"alert.raised.v1"}
    class Reading(ReadingV1):  # a second model for reading.v1 (tests/test_open_types.py: new types)
        pass

    with pytest.raises(ValueError, match="event type 'reading.v1' already has the data model"):
        reactor.on(Reading)(lambda event, ctx: None)
    with pytest.raises(ValueError, match="already handles reading.v1"):
        reactor.on(ReadingV1)(lambda event, ctx: None)


async def test_facts_carry_source_sequence_causation_and_correlation():
    harness = ReactorHarness(echo())
    cause = harness.event(reading(1), subject="t-1")
    [fact] = await harness.send(cause)
    assert (fact.source, fact.subject, fact.sequence) == ("reactor/echo", "t-1", 1)
    assert (fact.causationid, fact.correlationid, fact.time) == (cause.id, cause.correlationid, cause.time)


async def test_every_event_delivered_twice_has_its_effect_once():
    harness = ReactorHarness(echo())
    facts = []
    for value in range(10):
        event = harness.event(reading(value), subject="t-1")
        facts += await harness.send(event) + await harness.send(event)
    assert len(facts) == 10 and len({f.id for f in facts}) == 10
    assert harness.runner.counts["duplicates"] == 10


async def test_a_failing_handler_becomes_a_rejection_and_the_stream_goes_on():
    harness = ReactorHarness(echo())
    rejected = await harness.send(reading(13), subject="t-1")
    after = await harness.send(reading(14), subject="t-1")
    assert [e.type for e in rejected + after] == ["event.rejected.v1", "alert.raised.v1"]
    assert rejected[0].data.reason == "handler raised RuntimeError: unlucky"
    assert rejected[0].data.rejected_by == "reactor/echo"


async def test_undeclared_emissions_and_invalid_events_are_rejected():
    harness = ReactorHarness(echo())
    [undeclared] = await harness.send(reading(99), subject="t-1")
    assert "echo emitted reading.v1, which it does not declare" in undeclared.data.reason
    [invalid] = await harness.send_message(Message("events/reading.v1/t-1", b'{"type": "reading.v1"}'))
    assert invalid.subject == "unknown" and invalid.data.excerpt == '{"type": "reading.v1"}'


async def test_sequence_gaps_and_late_events_are_counted_and_stale_ones_can_be_dropped():
    reactor = echo()
    reactor.drop_stale = True
    harness = ReactorHarness(reactor)
    results = [await harness.send(reading(n), subject="t-1", sequence=n) for n in (1, 2, 5, 3, 6)]
    assert [len(r) for r in results] == [1, 1, 1, 0, 1]
    counts = harness.runner.counts
    assert (counts["sequence_gaps"], counts["sequence_late"], counts["dropped_stale"]) == (1, 1, 1)


async def test_a_replay_after_a_crash_rebuilds_the_very_same_facts():
    harness = ReactorHarness(echo())
    events = [harness.event(reading(n), subject="t-1") for n in range(6)]
    before = [f for e in events[:3] for f in await harness.send(e)]
    harness.restart()  # checkpoint after three events
    first_run = [f for e in events[3:] for f in await harness.send(e)]
    crashed_runner = harness.runner
    harness.runner = ReactorRunner(crashed_runner.reactor, harness.transport, harness.store, clock=lambda: harness.now)
    replay = [f for e in events[3:] for f in await harness.send(e)]  # redelivered: nothing was acknowledged
    assert [f.model_copy(update={"emittedtime": None}) for f in replay] == \
        [f.model_copy(update={"emittedtime": None}) for f in first_run]  # all but when they were emitted
    assert len(before) == 3 and len(replay) == 3


def committed(path) -> dict:
    """What another process would find in the state database."""
    with sqlite3.connect(path) as db:
        return {"sequence": dict(db.execute("SELECT * FROM meta")).get("sequence"),
                "seen": [i for (ids,) in db.execute("SELECT ids FROM seen_batches ORDER BY n")
                         for i in ids.split("\n")],
                "states": dict(db.execute("SELECT * FROM state")),
                "outbox": [row[0] for row in db.execute("SELECT id FROM outbox")]}


async def test_deliveries_are_acknowledged_only_after_the_checkpoint(tmp_path):
    broker = MemoryBroker()
    async with MemoryTransport(broker, ClientConfig("echo")) as transport:
        path = tmp_path / "echo.sqlite"
        runner = ReactorRunner(echo(), transport, StateStore(path))
        ack = asyncio.get_running_loop().create_future()
        event = new_event(reading(1), source="device/t-1", subject="t-1")
        runner.process(Delivery(message_of(event), lambda: ack.set_result(None)))
        await asyncio.sleep(0)
        assert not ack.done() and committed(path)["seen"] == []
        runner.checkpoint()
        await asyncio.wait_for(ack, 1)
        state = committed(path)
        assert state["sequence"] == "1" and state["seen"] == [event.id] and "count" in state["states"]


class Unconfirmed(MemoryTransport):
    """A broker that takes messages but never confirms them, like one that died before its PUBACK."""

    def publish(self, message):
        self.broker.route(message)
        return asyncio.get_running_loop().create_future()


async def test_facts_the_broker_never_confirmed_are_published_again_after_a_restart(tmp_path):
    path = tmp_path / "echo.sqlite"
    broker = MemoryBroker()
    async with Unconfirmed(broker, ClientConfig("echo")) as transport:
        runner = ReactorRunner(echo(), transport, StateStore(path))
        [fact] = runner.process(Delivery(message_of(new_event(reading(1), source="device/t-1", subject="t-1"))))
        runner.checkpoint()  # the delivery is acknowledged: only the outbox still has the fact
    assert committed(path)["outbox"] == [f"{fact.type}/{fact.id}"]  # outbox_key: one entry per version
    async with MemoryTransport(broker, ClientConfig("echo")) as transport:
        restarted = ReactorRunner(echo(), transport, StateStore(path))
        restarted.outbox.republish()
        await async_wait_for(lambda: not restarted.outbox, 5, "the broker to confirm the republished fact")
        restarted.checkpoint()
    sent = [m for m in broker.history if m.topic.startswith("events/alert.raised.v1/")]
    assert len(sent) == 2 and sent[0].payload == sent[1].payload  # the same fact, once more
    assert committed(path)["outbox"] == []


async def test_a_failing_handler_leaves_no_trace_in_state_or_timers():
    reactor = Reactor("fragile", state=type("Counter", (BaseModel,), {"__annotations__": {"n": int}, "n": 0}))

    @reactor.on(ReadingV1)
    def count(event, ctx):
        ctx.state.n += 1
        ctx.start_timer("later", 10)
        if event.data.measurements[0].value < 0:
            raise ValueError("negative")
        return []

    @reactor.timer("later")
    def later(ctx):
        return []

    harness = ReactorHarness(reactor)
    await harness.send(reading(1), subject="t-1")
    [rejected] = await harness.send(reading(-1), subject="t-1")
    assert rejected.type == "event.rejected.v1"
    assert harness.runner.states["t-1"].n == 1


async def test_timers_run_on_event_time_while_a_backlog_is_replayed():
    """A door opened and closed 5 s later, both handled 10 minutes late, raises nothing."""
    from gateway.settings import load_settings
    from reactors import door

    harness = ReactorHarness(door.build(load_settings({"CHOREO_REACTORS_DOOR_LIMIT_SECONDS": "30"})))
    opened_at = harness.now
    harness.now += timedelta(minutes=10)  # the wall clock is far ahead of the events

    def contact(value: float) -> ReadingV1:
        return ReadingV1(measurements=[Measurement(name="door_open", unit="/", value=value)])

    facts = await harness.send(contact(1), subject="d-1", at=opened_at)
    facts += harness.runner.fire_due_timers(harness.runner.watermark)  # the loop's step after a delivery
    facts += await harness.send(contact(0), subject="d-1", at=opened_at + timedelta(seconds=5))
    assert facts == []


async def test_a_partition_handles_only_its_share_of_subjects():
    harness = ReactorHarness(echo())
    harness.runner.partition = (0, 2)
    handled = [bool(await harness.send(reading(1), subject=f"t-{n}")) for n in range(40)]
    assert 5 < sum(handled) < 35 and harness.runner.counts["other_partition"] == 40 - sum(handled)


async def test_a_delivery_is_acknowledged_only_when_every_publish_succeeded():
    loop = asyncio.get_running_loop()
    first, second, ack = loop.create_future(), loop.create_future(), loop.create_future()
    Delivery(Message("t", b""), lambda: ack.set_result(None)).ack_when([first, second])
    first.set_result(None)
    await asyncio.sleep(0)
    assert not ack.done()
    second.set_result(None)
    await asyncio.wait_for(ack, 1)


async def test_a_failed_publish_leaves_the_delivery_unacknowledged():
    loop = asyncio.get_running_loop()
    failed, ack = loop.create_future(), loop.create_future()
    Delivery(Message("t", b""), lambda: ack.set_result(None)).ack_when([failed])
    failed.set_exception(TransportError("publish backlog full"))
    await asyncio.sleep(0)
    assert not ack.done()


def test_the_store_keeps_the_newest_window_of_handled_ids_across_restarts(tmp_path):
    path, window = tmp_path / "seen.sqlite", 100
    handled = [f"id-{n:04d}" for n in range(1000)]
    store = StateStore(path)
    for start in range(0, len(handled), 30):  # checkpoints of 30 ids, then one of 10
        store.commit(Changes(seen=handled[start:start + 30], seen_window=window))
    kept = StateStore(path).load()["seen"]
    assert kept == handled[-len(kept):]  # the newest, in order
    assert window <= len(kept) < window + 30  # older rows go once the newer ones hold the window


def test_a_state_file_with_one_row_per_handled_id_is_carried_over(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE seen (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL)")
        db.executemany("INSERT INTO seen (id) VALUES (?)", [("b",), ("a",), ("c",)])
    assert StateStore(path).load()["seen"] == ["b", "a", "c"]
    with sqlite3.connect(path) as db:
        assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'seen'").fetchall()


async def test_a_fact_the_broker_refuses_stays_in_the_outbox_and_stops_the_reactor(tmp_path, caplog):
    """The ACL and the reactor's declarations disagree: the fact must not be lost, and the reactor
    must not run on dropping facts; once the ACL allows it, the restarted reactor publishes it."""
    path, broker = tmp_path / "echo.sqlite", MemoryBroker()
    broker.deny("echo", "events/alert.raised.v1/+")
    async with MemoryTransport(broker, ClientConfig("echo")) as transport, \
            MemoryTransport(broker, ClientConfig("device")) as device:
        await transport.subscribe("events/reading.v1/+")
        device.publish(message_of(new_event(reading(1), source="device/t-1", subject="t-1")))
        runner = ReactorRunner(echo(), transport, StateStore(path))
        with pytest.raises(Refused, match="events/alert.raised.v1/t-1: not authorized"):
            await asyncio.wait_for(runner.run(asyncio.Event()), 5)
    [fact_id] = committed(path)["outbox"]
    assert f"echo keeps fact {fact_id} in its outbox and stops" in caplog.text
    assert not [m for m in broker.history if m.topic.startswith("events/alert.raised.v1/")]
    broker.denied.clear()  # the ACL is fixed
    async with MemoryTransport(broker, ClientConfig("echo")) as transport:
        restarted = ReactorRunner(echo(), transport, StateStore(path))
        restarted.outbox.republish()
        await async_wait_for(lambda: not restarted.outbox, 5, "the broker to confirm the fact")
    [sent] = [m for m in broker.history if m.topic.startswith("events/alert.raised.v1/")]
    assert f"{sent.topic.split('/')[1]}/{decode_event(sent.payload, topic=sent.topic).id}" == fact_id


def test_an_older_version_handled_on_its_own_is_not_upcast():
    from gateway.events import AlertRaisedV1, AlertRaisedV2
    from gateway.reactor import Reactor, spec_of

    both = Reactor("both")
    both.on(AlertRaisedV2)(lambda event, ctx: None)
    assert both.upcast == {"alert.raised.v1": "alert.raised.v2"}
    both.on(AlertRaisedV1)(lambda event, ctx: None)
    assert both.upcast == {} and spec_of(both).upcasts == () and sorted(both.consumes) == [
        "alert.raised.v1", "alert.raised.v2"]
    assert both.route("alert.raised.v1")[1] == "alert.raised.v1"
