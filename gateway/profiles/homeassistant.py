"""Home Assistant MQTT discovery: what a device, or a bridge such as Zigbee2MQTT, announces about itself.

From https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery: a retained JSON config on
`homeassistant/<component>/[<node_id>/]<object_id>/config` (an empty payload removes it), naming
the entity's `state_topic` (abbreviated `stat_t`) and its `device` (`dev`: `identifiers`/`ids`,
`name`, `manufacturer`/`mf`, `model`/`mdl`). Only announcements are read here: the device's
readings come through its own convention, which its state topic names; the device is matched to
the fleet by that convention's name for it, and reported once if the fleet does not name it.
"""
from __future__ import annotations

from datetime import datetime

from ..events import ActuationRequestedV1
from .base import Memory, Profile, Report

PREFIX = "homeassistant"
CONFIG_LIMIT = 64 * 1024


class HomeAssistant(Profile):
    name = "homeassistant"
    subscriptions = (f"{PREFIX}/+/+/config", f"{PREFIX}/+/+/+/config")
    # written by the accounts that announce: the Zigbee2MQTT bridge (its block in zigbee2mqtt.py)

    def device_key(self, topic: str) -> str | None:
        levels = topic.split("/")
        if levels[0] != PREFIX or levels[-1] != "config" or len(levels) not in (4, 5):
            return None
        return levels[2] or None  # the node id, or the object id without one

    def decode(self, topic: str, payload: bytes, now: datetime, memory: Memory) -> list[Report]:
        if not payload:
            return []  # the announcement withdrawn
        config = self.json_object(payload, limit=CONFIG_LIMIT)
        device = config.get("device", config.get("dev", {}))
        device = self.table(device, "device")
        state_topic = config.get("state_topic", config.get("stat_t"))
        speaks, native = self._speaker(state_topic, topic)
        maker = device.get("manufacturer", device.get("mf", ""))
        model = device.get("model", device.get("mdl", ""))
        name = device.get("name", config.get("name", ""))
        what = " ".join(str(part)[:64] for part in (maker, model, name) if part) or "a device"
        component = topic.split("/")[1]
        return [Report(native, announced=f"{what} ({component}, Home Assistant discovery)", speaks=speaks)]

    def _speaker(self, state_topic: object, topic: str) -> tuple[str, str]:
        """The convention and native name the state topic belongs to; else this announcement's own node id."""
        from . import profile_of  # the registry of conventions imports this module

        found = profile_of(state_topic) if isinstance(state_topic, str) else None
        if found is not None and found[0].name != self.name:
            return found[0].name, found[1]
        return self.name, topic.split("/")[2]

    def command(self, native: str, request: ActuationRequestedV1) -> list[tuple[str, bytes]]:
        return []  # announcements only: a device is commanded in its own convention
