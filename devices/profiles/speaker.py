"""What a simulated device says on MQTT and how it hears commands: one subclass per device convention.

A speaker turns the simulation's fields (`temperature`, `state`, ...) into the convention's
own topics and payloads, written from that convention's documentation and not from the
gateway's decoders, so that the end-to-end tests compare two independent readings of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from gateway.errors import ConfigError, InvalidInput
from gateway.transport import Message

from ..base import SimulatedDevice


@dataclass(frozen=True)
class Change:
    """What a native command asks of an actuator, in the simulation's terms."""

    state: str | None = None  # "on" | "off"
    position: float | None = None  # percent open


class Speaker:
    """One device speaking one convention; its MQTT client (`spec.account`) may be shared."""

    profile: ClassVar[str]
    kinds: ClassVar[frozenset[str]]  # the simulated kinds this convention carries here
    meters_actuators: ClassVar[bool] = False  # its actuators also report readings (`readings`) at their interval

    def __init__(self, device: SimulatedDevice) -> None:
        spec = device.spec
        if spec.kind not in self.kinds:
            raise ConfigError(f"device {spec.id}: the {self.profile} simulator has no {spec.kind!r}; "
                              f"it simulates {', '.join(sorted(self.kinds))}")
        self.device = device
        self.native = spec.native

    def will(self) -> Message | None:
        return None

    def birth(self) -> Message | None:
        return None

    def announcements(self) -> list[Message]:
        """Retained descriptions published once after the first connect."""
        return []

    def goodbye(self) -> list[Message]:
        """What the device says before it disconnects cleanly."""
        return []

    def readings(self, fields: dict[str, Any], now: datetime) -> list[Message]:
        """A sensor's periodic report of the simulation's `fields`."""
        raise NotImplementedError

    def state_report(self, state: dict[str, Any], now: datetime) -> list[Message]:
        """An actuator's report of its state, at connect and after every command."""
        raise NotImplementedError

    def command_filters(self) -> list[str]:
        return []

    def command(self, message: Message) -> Change:
        """The change a native command asks for; InvalidInput if it is malformed."""
        raise InvalidInput(f"{self.profile} device {self.native} takes no commands")

    def answer(self, command: Message, before: dict[str, Any], after: dict[str, Any],
               now: datetime) -> list[Message]:
        """What the device publishes once it has obeyed `command`: by default its state report."""
        return self.state_report(after, now)

    def refusal(self, command: Message, reason: str) -> list[Message]:
        """What the device answers to a command it could not obey (most conventions: nothing)."""
        return []

    @classmethod
    def client_announcements(cls, speakers: list[Speaker]) -> list[Message]:
        """Retained messages about all the devices of one shared client (Zigbee2MQTT's device list)."""
        return []


def local_time(moment: datetime) -> str:
    """The device clock as Tasmota and Zigbee2MQTT print it: ISO 8601 to the second, no zone."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def is_relay(device: SimulatedDevice) -> bool:
    return device.spec.kind in ("fan", "heater")
