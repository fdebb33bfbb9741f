"""The simulator's own convention: flat JSON on `devices/{id}/telemetry`, `online`/`offline` on
`devices/{id}/status` (gateway/ingest/simjson.py has the payload's rules).

An actuator reads `actuation.requested.v1` facts addressed to it (`events/actuation.requested.v1/{id}`)
and names the request it answered in its report, so it needs no native command.
"""
from __future__ import annotations

from datetime import datetime

from ..errors import InvalidInput
from ..events import ActuationRequestedV1
from ..ingest import simjson
from ..topics import STATUS_FILTER, TELEMETRY_FILTER
from .base import Memory, Profile, Report

STATUS = {b"online": True, b"offline": False}


class Native(Profile):
    name = "native"
    subscriptions = (TELEMETRY_FILTER, STATUS_FILTER)
    acl = ("pattern write devices/%u/telemetry", "pattern write devices/%u/status",
           "pattern read events/actuation.requested.v1/%u")

    def device_key(self, topic: str) -> str | None:
        first, _, rest = topic.partition("/")
        if first != "devices":
            return None
        device, slash, _ = rest.partition("/")
        return device if slash and device else None

    def decode(self, topic: str, payload: bytes, now: datetime, memory: Memory) -> list[Report]:
        device = topic.split("/")[1]
        if topic.endswith("/status"):
            if not payload:
                return []  # a cleared retained status is not a fact
            online = STATUS.get(payload.strip().lower())
            if online is None:
                raise InvalidInput(f"status must be 'online' or 'offline', got {payload[:32]!r}")
            return [Report(device, online=online)]
        decoded = simjson.decode(payload, now)
        actuator = decoded.actuator
        if actuator is None:
            return [Report(device, measurements=decoded.measurements, time=decoded.time,
                           sequence=decoded.sequence)]
        return [Report(device, state=actuator.state, position=actuator.position, time=decoded.time,
                       sequence=decoded.sequence, caused_by=decoded.caused_by)]

    def command(self, native: str, request: ActuationRequestedV1) -> list[tuple[str, bytes]]:
        return []  # a native actuator reads the request fact itself
