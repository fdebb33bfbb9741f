"""The bridge service: a profile actuator's requests become its native commands.

It consumes `actuation.requested.v1` and, when the fleet registry says the subject speaks a
device convention (Zigbee2MQTT, Tasmota, Shelly, Homie), publishes the command that convention
documents (`PROFILES[profile].command`). Native devices read their requests themselves, so
those are not its business. Ingest links the device's next state report to the request, so
the chain request -> actuator.changed.v1 closes without the bridge emitting a fact.

A request is acknowledged only once the broker has acknowledged every command made from it;
undecodable requests, unknown or non-actuator subjects and requests a profile cannot express
are counted and logged, never fatal. A request redelivered after its commands were acknowledged
(same id) is not sent again; one redelivered before that is, since its commands may be lost.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import InvalidInput
from ..events import ActuationRequestedV1, decode_event
from ..fleet import ACTUATOR_KINDS, DeviceSpec, Registry
from ..manifest import ServiceSpec
from ..profiles import PROFILES, Profile
from ..service import consume, ignored_retained
from ..topics import event_filter
from ..transport import Delivery, Message, Transport

log = logging.getLogger(__name__)

NAME = "bridge"
REMEMBERED_REQUESTS = 10_000  # ids kept to recognise a redelivery
# What each kind of actuator is asked, to learn the topics its commands go to (for the ACL)
SAMPLE_REQUESTS = {"relay": ActuationRequestedV1(state="on", reason="acl"),
                   "valve": ActuationRequestedV1(position=50.0, reason="acl")}

SPEC = ServiceSpec(
    name=NAME,
    reads=(event_filter(ActuationRequestedV1.event_type),),
    consumes=(ActuationRequestedV1.event_type,),
    emits=(),
)


def command_topics(devices: Iterable[DeviceSpec]) -> list[str]:
    """Every native command topic the bridge may write: those of the fleet's profile actuators."""
    topics: set[str] = set()
    for spec in devices:
        if spec.profile == "native" or spec.kind not in ACTUATOR_KINDS:
            continue
        topics.update(topic for topic, _ in _sample_commands(PROFILES[spec.profile], spec))
    return sorted(topics)


def _sample_commands(profile: Profile, spec: DeviceSpec) -> list[tuple[str, bytes]]:
    """A valve is asked a position, or on/off where its convention has no position (Tasmota's POWER)."""
    if spec.kind == "valve":
        try:
            return profile.command(spec.native, SAMPLE_REQUESTS["valve"])
        except InvalidInput:
            pass
    return profile.command(spec.native, SAMPLE_REQUESTS["relay"])


@dataclass(frozen=True)
class Commands:
    """The native commands one delivered request stands for, and the request's id once decoded."""

    request_id: str | None = None
    messages: tuple[Message, ...] = ()


class Bridge:
    """Which native commands a request stands for (no I/O)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.counts: Counter[str] = Counter()
        self._sent: OrderedDict[str, None] = OrderedDict()  # requests whose commands the broker has

    def commands(self, message: Message) -> Commands:
        """The native commands for one delivered request; none (counted, logged) when it is not for them."""
        if ignored_retained(message, self.counts, NAME):
            return Commands()
        self.counts["received"] += 1
        try:
            event = decode_event(message.payload, topic=message.topic)
        except InvalidInput as exc:
            return self._skip("undecodable", f"a request on {message.topic[:128]}: {exc.message}")
        if not isinstance(event.data, ActuationRequestedV1):
            return self._skip("undecodable", f"{event.type} on {message.topic[:128]} is not a request")
        if event.id in self._sent:
            return self._skip("duplicates", None)
        spec = self.registry.get(event.subject)
        if spec is None:
            return self._skip("unknown_target", f"request {event.id} for {event.subject!r}, not in the fleet")
        if spec.profile == "native":
            self.counts["native_target"] += 1  # the device reads its requests itself
            return Commands()
        if spec.kind not in ACTUATOR_KINDS:
            return self._skip("not_actuator", f"request {event.id} for {spec.id}, a {spec.kind} sensor")
        try:
            native = PROFILES[spec.profile].command(spec.native, event.data)
        except InvalidInput as exc:
            return self._skip("inexpressible", f"request {event.id} for {spec.id} ({spec.profile}): {exc.message}")
        outside = {topic for topic, _ in native} - set(command_topics([spec]))
        if outside:  # the broker would refuse it (its ACL grants only these), which stops the service
            return self._skip("inexpressible", f"request {event.id} for {spec.id} ({spec.profile}): a {spec.kind} "
                                               f"takes no command on {', '.join(sorted(outside))}")
        self.counts["commands"] += len(native)
        self.counts[f"commands:{spec.profile}"] += len(native)
        return Commands(event.id, tuple(Message(topic, payload) for topic, payload in native))

    def sent(self, request_id: str) -> None:
        """The broker has every command of this request: a redelivery of it is not sent again."""
        self._sent[request_id] = None
        if len(self._sent) > REMEMBERED_REQUESTS:
            self._sent.popitem(last=False)

    def _skip(self, counter: str, reason: str | None) -> Commands:
        self.counts[counter] += 1
        if reason:
            log.warning("bridge skipped %s", reason)
        return Commands()


class BridgeService:
    """Consumes requests; acknowledges each once the broker acknowledged the commands made from it."""

    spec = SPEC

    def __init__(self, transport: Transport, registry: Registry) -> None:
        self.transport = transport
        self.bridge = Bridge(registry)
        self.counts = self.bridge.counts

    async def run(self, stop: asyncio.Event) -> None:
        await consume(self.transport, stop, self.process)

    def process(self, delivery: Delivery) -> None:
        commands = self.bridge.commands(delivery.message)
        published = [self.transport.publish(command) for command in commands.messages]
        if commands.request_id is not None and published:
            self._remember_when_sent(commands.request_id, published)
        delivery.ack_when(published)

    def _remember_when_sent(self, request_id: str, published: list[asyncio.Future[None]]) -> None:
        """Once the broker has every command of the request, a redelivery of it is not sent again."""
        def if_all_succeeded(_: object = None) -> None:
            if all(_succeeded(f) for f in published):
                self.bridge.sent(request_id)

        pending = [future for future in published if not future.done()]
        if pending:
            asyncio.gather(*pending, return_exceptions=True).add_done_callback(if_all_succeeded)
        else:
            if_all_succeeded()


def _succeeded(future: asyncio.Future[None]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None
