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
ONLINE, OFFLINE = "online", "offline"


def this_instance() -> str:
    """Which process speaks, in its manifest and its counters: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ServiceSpec:
    """What a service subscribes to (`reads`, MQTT filters) and which event types it consumes and emits."""

    name: str
    reads: tuple[str, ...]
    consumes: tuple[str, ...]
    emits: tuple[str, ...]
    version: str = VERSION
    partition: str | None = None  # e.g. "0-of-2" when instances split the subjects
    # consumed older versions -> the version its handler receives them as (gateway/upcast.py)
    upcasts: tuple[tuple[str, str], ...] = ()
    # Filters among `reads` whose retained messages it takes on every subscribe (what it learns from
    # them it must learn again after a restart); for the others, only when the subscription is new to its session.
    documents: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not set(self.documents) <= set(self.reads):
            raise ValueError(f"{self.name}: documents {self.documents} are not all among its reads")

    @property
    def topic(self) -> str:
        topic = service_topic(self.name)
        return f"{topic}/{self.partition}" if self.partition else topic

    @property
    def label(self) -> str:
        """The name, and the partition when instances split the subjects: `threshold[0-of-2]`."""
        return f"{self.name}[{self.partition}]" if self.partition else self.name

    def manifest(self, *, online: bool) -> Message:
        """The retained message announcing this service, from this process."""
        return Manifest(self, ONLINE if online else OFFLINE, this_instance()).message()


@dataclass(frozen=True)
class Manifest:
    """A service's announcement: its spec, whether it is online and which process (`host:pid`) it is."""

    spec: ServiceSpec
    status: str
    instance: str = ""

    @property
    def online(self) -> bool:
        return self.status == ONLINE

    def message(self) -> Message:
        document = {
            "name": self.spec.name,
            "partition": self.spec.partition,
            "status": self.status,
            "consumes": list(self.spec.consumes),
            "emits": list(self.spec.emits),
            "reads": list(self.spec.reads),
            "upcasts": dict(self.spec.upcasts),
            "version": self.spec.version,
            "instance": self.instance,
        }
        return Message(self.spec.topic, json.dumps(document).encode(), qos=1, retain=True)

    @classmethod
    def parse(cls, payload: bytes) -> Manifest:
        """A manifest from its JSON, as any service in any language writes it; ValueError if it is none.

        Only `name` and `status` are required.
        """
        try:
            document = json.loads(payload)
            spec = ServiceSpec(name=document["name"], partition=document.get("partition"),
                               reads=tuple(document.get("reads", [])), consumes=tuple(document.get("consumes", [])),
                               emits=tuple(document.get("emits", [])), version=str(document.get("version", "")),
                               upcasts=_upcasts(document.get("upcasts", {})))
            return cls(spec, document["status"], document.get("instance", ""))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a service manifest: {exc!r}") from None


def _upcasts(document: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(document, dict):
        raise TypeError("upcasts: expected an object mapping an older type to the version it is handled as")
    return tuple(sorted((str(older), str(newer)) for older, newer in document.items()))
