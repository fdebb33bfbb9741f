"""Device conventions: one module per convention, each saying which topics ingest reads for it,
how a native message becomes the project's facts, what command a request becomes, and which
ACL lines confine its devices (docs/devices.md).
"""
from __future__ import annotations

from .base import Memory, Profile, Report
from .homeassistant import HomeAssistant
from .homie import Homie
from .native import Native
from .shelly import Shelly
from .tasmota import Tasmota
from .zigbee2mqtt import Zigbee2Mqtt

# Tried in this order to find whose topic a message is: the native and prefixed ones first,
# Shelly's `<id>/...` last, as its first level is free.
PROFILES: dict[str, Profile] = {
    profile.name: profile for profile in (Native(), Zigbee2Mqtt(), Tasmota(), Homie(), HomeAssistant(), Shelly())
}


def profile_of(topic: str) -> tuple[Profile, str] | None:
    """The profile a device topic belongs to and the native name in it, by string operations only."""
    for profile in PROFILES.values():
        key = profile.device_key(topic)
        if key is not None:
            return profile, key
    return None


__all__ = ["PROFILES", "Memory", "Profile", "Report", "profile_of"]
