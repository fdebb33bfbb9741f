"""The bridge's decisions (no I/O): which native commands a request becomes, what it counts and skips,
and the declaration its ACL block is generated from. tests/integration/test_bridge.py runs it for real."""
from __future__ import annotations

import json
from pathlib import Path

from gateway.acl import service_block
from gateway.bridge import Bridge, BridgeService, command_topics
from gateway.declarations import bridge_declaration
from gateway.events import ActuationRequestedV1, AlertRaisedV1, new_event
from gateway.fleet import Fleet, Registry
from gateway.settings import load_settings
from gateway.transport import ClientConfig, Message
from gateway.transport.memory import MemoryBroker, MemoryTransport

FLEET = {"sites": [{"id": "hq", "rooms": [{"id": "lab", "devices": [
    {"kind": "fan", "profile": "tasmota", "native": "sonoff-lab"},
    {"kind": "fan", "profile": "zigbee2mqtt", "native": "lab_plug"},
    {"kind": "heater", "profile": "shelly", "native": "shellyplus1pm-lab"},
    {"kind": "valve", "profile": "homie", "native": "lab-valve"},
    {"kind": "fan"},
    {"kind": "temperature", "profile": "tasmota", "native": "th-lab"},
]}]}]}


def request(subject: str, **wanted) -> Message:
    event = new_event(ActuationRequestedV1(reason="test", **wanted), source="reactor/climate", subject=subject)
    return Message(f"events/actuation.requested.v1/{subject}", event.to_json())


def bridge() -> Bridge:
    return Bridge(Registry(Fleet.model_validate(FLEET)))


def sent_for(translator: Bridge, message: Message) -> list[Message]:
    return list(translator.commands(message).messages)


def test_a_request_for_a_profile_actuator_becomes_its_native_command():
    translator = bridge()

    def commands(message: Message) -> list[Message]:
        return sent_for(translator, message)

    assert commands(request("lab-fan-1", state="on")) == [Message("cmnd/sonoff-lab/POWER", b"ON")]
    assert commands(request("lab-fan-2", state="off")) == [Message("zigbee2mqtt/lab_plug/set", b'{"state":"OFF"}')]
    [rpc] = commands(request("lab-heater-1", state="on"))
    frame = json.loads(rpc.payload)
    assert rpc.topic == "shellyplus1pm-lab/rpc" and frame["method"] == "Switch.Set"
    assert frame["params"] == {"id": 0, "on": True} and isinstance(frame["src"], str)
    assert commands(request("lab-valve-1", position=40)) == [Message("homie/5/lab-valve/valve/position/set", b"40.0")]


def test_what_is_not_its_business_is_counted_and_sends_nothing():
    skipping = bridge()
    assert sent_for(skipping, request("lab-fan-3", state="on")) == []  # native: the fan reads it itself
    assert sent_for(skipping, request("nobody-1", state="on")) == []
    assert sent_for(skipping, request("lab-temperature-1", state="on")) == []
    assert sent_for(skipping, request("lab-fan-1", position=20)) == []  # a relay has no position
    assert sent_for(skipping, request("lab-valve-1", state="on")) == []  # a Homie valve has only a position
    assert sent_for(skipping, Message("events/actuation.requested.v1/lab-fan-1", b"{not json")) == []
    alert = new_event(AlertRaisedV1(alert="high", metric="temperature", value=30, limit=28, unit="Cel",
                                    above_seconds=1), source="reactor/threshold", subject="lab-fan-1")
    assert sent_for(skipping, Message("events/actuation.requested.v1/lab-fan-1", alert.to_json())) == []
    retained = request("lab-fan-1", state="on")
    assert sent_for(skipping, Message(retained.topic, retained.payload, retain=True)) == []
    counts = skipping.counts
    assert (counts["native_target"], counts["unknown_target"], counts["not_actuator"], counts["inexpressible"],
            counts["undecodable"], counts["ignored_retained"], counts["commands"]) == (1, 1, 1, 2, 2, 1, 0)


def test_a_request_redelivered_after_its_commands_were_acknowledged_is_not_sent_again():
    once = bridge()
    message = request("lab-fan-1", state="on")
    first = once.commands(message)
    assert first.messages and once.commands(message).messages == first.messages  # not yet acknowledged: again
    assert first.request_id is not None
    once.sent(first.request_id)
    assert sent_for(once, message) == []
    assert once.counts["duplicates"] == 1 and once.counts["commands"] == 2


async def test_the_service_sends_a_request_redelivered_after_the_broker_had_its_command_once():
    broker = MemoryBroker()
    async with MemoryTransport(broker, ClientConfig(client_id="bridge")) as transport, \
            MemoryTransport(broker, ClientConfig(client_id="reactor")) as reactor:
        await transport.subscribe("events/actuation.requested.v1/+")
        service = BridgeService(transport, Registry(Fleet.model_validate(FLEET)))
        message = request("lab-fan-1", state="on")
        for _ in range(2):
            reactor.publish(message)
            delivery = await transport.receive(timeout=1)
            assert delivery is not None
            service.process(delivery)
        assert [m.payload for m in broker.history if m.topic == "cmnd/sonoff-lab/POWER"] == [b"ON"]
        assert service.counts["duplicates"] == 1


def test_a_valve_whose_convention_has_no_position_is_commanded_on_and_off():
    fleet = Fleet.model_validate({"sites": [{"id": "hq", "rooms": [{"id": "lab", "devices": [
        {"kind": "valve", "profile": "tasmota", "native": "sonoff-valve"}]}]}]})
    assert command_topics(fleet.devices()) == ["cmnd/sonoff-valve/POWER"]


def test_its_acl_block_writes_exactly_the_command_topics_of_the_fleets_profile_actuators(tmp_path: Path):
    assert command_topics(Fleet.model_validate(FLEET).devices()) == [
        "cmnd/sonoff-lab/POWER", "homie/5/lab-valve/valve/position/set", "shellyplus1pm-lab/rpc",
        "zigbee2mqtt/lab_plug/set"]
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text('[[sites]]\nid = "hq"\n[[sites.rooms]]\nid = "lab"\n'
                          'devices = [{ kind = "fan", profile = "tasmota", native = "sonoff-lab" },'
                          ' { kind = "fan" }]\n')
    declaration = bridge_declaration(load_settings({"CHOREO_FLEET_FILE": str(fleet_file)}))
    assert (declaration.consumes, declaration.emits, declaration.writes) == (
        ("actuation.requested.v1",), (), ("cmnd/sonoff-lab/POWER",))
    block = service_block(declaration)
    assert "user bridge\ntopic read events/actuation.requested.v1/+\ntopic write cmnd/sonoff-lab/POWER\n" in block
    assert "topic write events/" not in block
