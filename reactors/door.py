"""Door left open: `door.open_too_long` raised when a door stays open past the limit, cleared when it closes."""
from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.events import AlertClearedV1, AlertRaisedV1, Event, EventData, ReadingV1
from gateway.reactor import Context, Reactor
from gateway.settings import ReactorSettingsModel, Settings

ALERT = "door.open_too_long"


class DoorSettings(ReactorSettingsModel):
    limit_seconds: float = Field(default=60.0, gt=0, description="open longer than this raises door.open_too_long")


class DoorState(BaseModel):
    open: bool = False
    raised: bool = False
    site: str | None = None
    room: str | None = None


def build(settings: Settings) -> Reactor:
    reactor = Reactor("door", description="alerts when a door stays open too long", state=DoorState,
                      settings=settings.reactor("door", DoorSettings))

    @reactor.on(ReadingV1, emits=[AlertClearedV1])
    def contact(event: Event[ReadingV1], ctx: Context) -> list[EventData]:
        reading = event.data.value_of("door_open")
        if reading is None:
            return []
        door = ctx.state
        door.site, door.room = event.data.site, event.data.room
        if reading.value and not door.open:
            door.open = True
            ctx.start_timer("open-too-long", ctx.settings.limit_seconds)
        elif not reading.value and door.open:
            door.open = False
            ctx.cancel_timer("open-too-long")
            if door.raised:
                door.raised = False
                return [AlertClearedV1(alert=ALERT, metric="door_open", value=0, limit=1, unit="/",
                                       site=door.site, room=door.room)]
        return []

    @reactor.timer("open-too-long", emits=[AlertRaisedV1])
    def too_long(ctx: Context) -> list[EventData]:
        door = ctx.state
        door.raised = True
        return [AlertRaisedV1(alert=ALERT, metric="door_open", value=1, limit=1, unit="/",
                              above_seconds=ctx.settings.limit_seconds, site=door.site, room=door.room)]

    return reactor
