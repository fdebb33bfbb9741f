"""Service manifests: each service says, retained on `choreo/services/{name}`, what it is and does.

The manifest is published once the service has subscribed and is consuming; its last
will replaces it with the same manifest marked offline. Partitioned instances each have
their own, on `choreo/services/{name}/{partition}`. Tools wait on
`"status": "online"` to know a service is ready, and draw the choreography from them.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

from .topics import service_topic
from .transport import Message

VERSION = "0.1.0"


@dataclass(frozen=True)
class ServiceSpec:
    """What a service subscribes to (`reads`, MQTT filters) and which event types it consumes and emits."""

    name: str
    reads: tuple[str, ...]
    consumes: tuple[str, ...]
    emits: tuple[str, ...]
    version: str = VERSION
    partition: str | None = None  # e.g. "0-of-2" when instances split the subjects

    @property
    def topic(self) -> str:
        topic = service_topic(self.name)
        return f"{topic}/{self.partition}" if self.partition else topic

    def manifest(self, *, online: bool) -> Message:
        document = {
            "name": self.name,
            "partition": self.partition,
            "status": "online" if online else "offline",
            "consumes": list(self.consumes),
            "emits": list(self.emits),
            "reads": list(self.reads),
            "version": self.version,
            "instance": f"{socket.gethostname()}:{os.getpid()}",
        }
        return Message(self.topic, json.dumps(document).encode(), qos=1, retain=True)
