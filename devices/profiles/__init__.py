"""Simulated devices that speak a real device convention instead of the gateway's own JSON.

A fleet group with `profile = "zigbee2mqtt" | "tasmota" | "shelly" | "homie"` makes its devices
publish and obey that convention's topics and payloads; `native` (or no profile) keeps the
simulator's `devices/{id}/telemetry` JSON.
"""
from __future__ import annotations

from ..base import SimulatedDevice
from .homie import HomieSpeaker
from .shelly import ShellySpeaker
from .speaker import Change, Speaker
from .tasmota import TasmotaSpeaker
from .zigbee2mqtt import Zigbee2MqttSpeaker

SPEAKERS: dict[str, type[Speaker]] = {
    speaker.profile: speaker for speaker in (Zigbee2MqttSpeaker, TasmotaSpeaker, ShellySpeaker, HomieSpeaker)
}

__all__ = ["SPEAKERS", "Change", "Speaker", "speaker_for"]


def speaker_for(device: SimulatedDevice) -> Speaker | None:
    """The device's convention speaker, or None for a device speaking the simulator's own JSON."""
    profile = device.spec.profile
    return None if profile == "native" else SPEAKERS[profile](device)
