"""Frost watch: a reactor package that joins the choreography from outside the gateway.

It consumes `reading.v1` and emits a fact type of its own, `frost.warned.v1`, when a
temperature falls below its limit; it warns again only after the temperature has been
back above the limit. Its settings are `[reactors.frost]` in choreo.toml, or
`CHOREO_REACTORS_FROST_LIMIT`.
"""
from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gateway.events import Event, EventData, Located, ReadingV1
from gateway.reactor import Context, Reactor
from gateway.settings import Settings


class FrostWarnedV1(Located):
    """A temperature fell below the frost limit."""

    event_type: ClassVar[str] = "frost.warned.v1"
    temperature: float
    limit: float


class FrostSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    limit: float = Field(default=3.0, description="warn below this temperature, in Cel")


class FrostState(BaseModel):
    warned: bool = False


def build(settings: Settings) -> Reactor:
    reactor = Reactor("frost", description="warns before pipes freeze", state=FrostState,
                      settings=settings.reactor("frost", FrostSettings))

    @reactor.on(ReadingV1, emits=[FrostWarnedV1])
    def check(event: Event[ReadingV1], ctx: Context) -> list[EventData]:
        temperature = event.data.value_of("temperature")
        if temperature is None:
            return []
        cold = temperature.value < ctx.settings.limit
        if cold == ctx.state.warned:
            return []
        ctx.state.warned = cold
        if not cold:
            return []
        return [FrostWarnedV1(temperature=temperature.value, limit=ctx.settings.limit,
                              site=event.data.site, room=event.data.room, kind=event.data.kind)]

    return reactor
