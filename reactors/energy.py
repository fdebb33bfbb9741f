"""Energy: per meter and per period (an hour by default), the energy counted, emitted as the period
closes, that is with the meter's first reading of a later period: the energy up to that reading
counts for the closing period, and after a silence of several periods the fact spans them all.
A counter that goes backwards (the meter restarted) starts a new baseline; late readings are
dropped (by their sequence), so they cannot look like a restart."""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from gateway.events import EnergyMeasuredV1, Event, EventData, ReadingV1
from gateway.reactor import Context, Reactor
from gateway.settings import ReactorSettingsModel, Settings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EnergySettings(ReactorSettingsModel):
    period_seconds: int = Field(default=3600, ge=1, description="energy.measured.v1 per device per period")


class MeterState(BaseModel):
    period_start: datetime | None = None
    counter_at_start: float = 0.0  # the meter's Wh counter when the period started
    counted: float = 0.0  # Wh counted in this period before any restart of the meter
    last_counter: float = 0.0


def period_of(moment: datetime, seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=int((moment - EPOCH).total_seconds()) // seconds * seconds)


def build(settings: Settings) -> Reactor:
    reactor = Reactor("energy", description="energy per meter per period", state=MeterState,
                      settings=settings.reactor("energy", EnergySettings), drop_stale=True)

    @reactor.on(ReadingV1, emits=[EnergyMeasuredV1])
    def measure(event: Event[ReadingV1], ctx: Context) -> list[EventData]:
        reading = event.data.value_of("energy")
        if reading is None:
            return []
        meter, seconds = ctx.state, ctx.settings.period_seconds
        period = period_of(event.time, seconds)
        facts: list[EventData] = []
        if meter.period_start is None:
            meter.period_start, meter.counter_at_start = period, reading.value
        elif reading.value < meter.last_counter:  # restarted: keep what was counted, count anew from here
            meter.counted += meter.last_counter - meter.counter_at_start
            meter.counter_at_start = reading.value
        if not math.isfinite(meter.counted + reading.value - meter.counter_at_start):
            # counters near the float limit: refuse the reading (the handler's changes are undone)
            raise ValueError(f"energy counted overflows with a counter of {reading.value} Wh")
        if period > meter.period_start:
            energy = meter.counted + reading.value - meter.counter_at_start
            facts.append(EnergyMeasuredV1(period_start=meter.period_start, period_end=period,
                                          energy_wh=round(energy, 6), site=event.data.site, room=event.data.room))
            meter.period_start, meter.counter_at_start, meter.counted = period, reading.value, 0.0
        meter.last_counter = reading.value
        return facts

    return reactor
