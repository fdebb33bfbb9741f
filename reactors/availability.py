"""Availability: a sensor silent for too long is `device.offline.v1` (reason `silent`); its next
reading makes it `device.online.v1` again. Devices that said goodbye (or whose will did) are
already offline by ingest's fact and are not timed out twice. Actuators report only when they
change, so their silence means nothing; their will still tells when they are gone."""
from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.events import DeviceOfflineV1, DeviceOnlineV1, Event, EventData, ReadingV1
from gateway.reactor import Context, Reactor
from gateway.settings import ReactorSettingsModel, Settings


class AvailabilitySettings(ReactorSettingsModel):
    silence_seconds: float = Field(default=30.0, gt=0, description="no telemetry this long: device.offline.v1")


class DeviceState(BaseModel):
    silent: bool = False


def build(settings: Settings) -> Reactor:
    reactor = Reactor("availability", description="times out silent devices", state=DeviceState,
                      settings=settings.reactor("availability", AvailabilitySettings))

    @reactor.on(ReadingV1, emits=[DeviceOnlineV1])
    def heard(event: Event[ReadingV1], ctx: Context) -> list[EventData]:
        ctx.start_timer("silence", ctx.settings.silence_seconds)
        if ctx.state.silent:
            ctx.state.silent = False
            return [DeviceOnlineV1()]
        return []

    @reactor.on(DeviceOfflineV1)
    def went_away(event: Event[DeviceOfflineV1], ctx: Context) -> list[EventData]:
        if event.source == "reactor/availability":
            return []  # its own silent fact coming back: a reading since may have started a new timer
        ctx.cancel_timer("silence")  # it is offline already; do not say so twice
        return []

    @reactor.timer("silence", emits=[DeviceOfflineV1])
    def silent(ctx: Context) -> list[EventData]:
        ctx.state.silent = True
        return [DeviceOfflineV1(reason="silent", silent_seconds=ctx.settings.silence_seconds)]

    return reactor
