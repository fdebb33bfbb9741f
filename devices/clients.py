"""The fleet's MQTT clients: who connects for which devices, with which account, will and birth.

A native device is its own client (account = its id). A profile device connects as its
convention does: a Tasmota, Shelly or Homie device as itself (account = its native name),
every Zigbee2MQTT device through the one bridge client (account `zigbee2mqtt`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gateway.credentials import device_password
from gateway.errors import ConfigError
from gateway.settings import Settings
from gateway.topics import status_topic
from gateway.transport import ClientConfig, Message, Transport

from .member import Member

ONLINE = b"online"
OFFLINE = b"offline"


@dataclass
class Client:
    """One MQTT connection and the devices it publishes for."""

    account: str
    members: list[Member] = field(default_factory=list)

    @property
    def transport(self) -> Transport:
        return self.members[0].transport

    @property
    def profile(self) -> str:
        speaker = self.members[0].speaker
        return speaker.profile if speaker else "native"

    def commands(self) -> dict[str, Member]:
        """Native command topic -> the profile device that obeys it."""
        return {topic: m for m in self.members if m.speaker for topic in m.speaker.command_filters()}

    def goodbye(self) -> list[Message]:
        """What its devices say before a clean disconnect, each topic once."""
        if self.profile == "native":
            return [Message(status_topic(self.account), OFFLINE, retain=True)]
        said: dict[str, Message] = {}
        for member in self.members:
            for message in member.speaker.goodbye() if member.speaker else []:
                said.setdefault(message.topic, message)
        return list(said.values())


def fleet_clients(members: list[Member]) -> list[Client]:
    clients: dict[str, Client] = {}
    for member in members:
        account = member.device.spec.account
        clients.setdefault(account, Client(account)).members.append(member)
    return list(clients.values())


def client_config(settings: Settings, client: Client) -> ClientConfig:
    if settings.devices.secret is None:
        raise ConfigError("CHOREO_DEVICES_SECRET is not set: devices derive their broker passwords from it")
    password = device_password(settings.devices.secret.get_secret_value(), client.account)
    speaker = client.members[0].speaker
    will: Message | None
    birth: Message | None
    if speaker is None:
        status = status_topic(client.account)
        will, birth = Message(status, OFFLINE, retain=True), Message(status, ONLINE, retain=True)
    else:
        will, birth = speaker.will(), speaker.birth()
    return ClientConfig.from_settings(
        settings.mqtt, client.account, client_id=client.account, username=client.account, password=password,
        queue_size=100, will=will, birth=birth,
    )
