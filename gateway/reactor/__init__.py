"""The reactor runtime: declare what a reactor consumes and emits, and let the runtime do the rest.

    reactor = Reactor("door", state=DoorState, settings=DoorSettings())

    @reactor.on(ReadingV1, emits=[AlertClearedV1])
    def contact(event: Event[ReadingV1], ctx: Context) -> list[EventData]:
        ...
        ctx.start_timer("open-too-long", seconds=ctx.settings.limit_seconds)

    @reactor.timer("open-too-long", emits=[AlertRaisedV1])
    def too_long(ctx: Context) -> list[EventData]:
        return [AlertRaisedV1(...)]

A handler receives its event typed (`event.data` is a ReadingV1 above) and returns the data
of the facts it concludes, optionally as (subject, data);
the runtime fills in the envelope (id, source, time, sequence, correlationid inherited
from the cause, causationid naming it) and refuses types the reactor did not declare.

Safety under redelivery and restarts (a transactional outbox):
- a handler's effects (state, timers, the facts it emits) are committed together in a
  checkpoint (gateway/state.py), and a delivery is acknowledged only after the
  checkpoint that includes them; a handler that raises leaves no effect at all;
- emitted facts stay in the outbox until the broker confirms them, and are published
  again after a restart, so no fact is lost between a checkpoint and its PUBACK;
- the same event id is handled once (a window of recent ids, kept with the state);
- a fact's id is derived from its cause and its time is its cause's time (a timer's
  fact: the deadline), so a replay rebuilds the very same facts, which consumers drop;
- timers run on event time (the newest event time handled) while there is a backlog,
  and on the wall clock when the reactor is idle, so replaying a backlog after
  downtime does not fire timers that the backlog itself would have cancelled.
"""
from .context import Context
from .registry import Emission, Handler, NoState, Reactor, TimerHandler, spec_of
from .runner import ReactorRunner

__all__ = ["Context", "Emission", "Handler", "NoState", "Reactor", "ReactorRunner", "TimerHandler", "spec_of"]
