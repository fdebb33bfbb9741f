"""A mixed fleet's clients: who connects as whom, what they announce, and a native command's round trip.

Logic only, through the in-memory broker; tests/integration/test_bridge.py runs it on Mosquitto.
"""
from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime

from devices.fleet import FleetRunner, SimulatedFleet
from gateway.fleet import Fleet
from gateway.settings import load_settings
from gateway.transport import ClientConfig, Message
from gateway.transport.memory import MemoryBroker, MemoryTransport
from tests.helpers import async_wait_for

FLEET = {"seed": 2, "interval": 0.05, "sites": [{"id": "hq", "rooms": [{"id": "lab", "devices": [
    {"kind": "temperature", "profile": "zigbee2mqtt", "native": "lab_climate"},
    {"kind": "fan", "profile": "zigbee2mqtt", "native": "lab_plug"},
    {"kind": "fan", "profile": "tasmota", "native": "sonoff-lab"},
    {"kind": "temperature"},
]}]}]}


def test_zigbee2mqtt_devices_share_one_bridge_client_and_the_others_connect_as_themselves():
    runner = FleetRunner(Fleet.model_validate(FLEET), load_settings({"CHOREO_DEVICES_SECRET": "s"}),
                         transport_factory=lambda config: MemoryTransport(MemoryBroker(), config),
                         status_stream=io.StringIO())
    accounts = {client.account: [m.device.id for m in client.members] for client in runner.clients}
    assert accounts == {"zigbee2mqtt": ["lab-temperature-1", "lab-fan-1"], "sonoff-lab": ["lab-fan-2"],
                        "lab-temperature-2": ["lab-temperature-2"]}
    configs = {t.config.username: t.config for t in runner.transports}
    assert configs["zigbee2mqtt"].will == Message("zigbee2mqtt/bridge/state", b'{"state":"offline"}', retain=True)
    assert configs["sonoff-lab"].birth == Message("tele/sonoff-lab/LWT", b"Online", retain=True)
    assert configs["lab-temperature-2"].will == Message("devices/lab-temperature-2/status", b"offline", retain=True)


async def test_a_profile_fleet_announces_reads_obeys_and_says_goodbye():
    broker = MemoryBroker()
    runner = FleetRunner(Fleet.model_validate(FLEET), load_settings({"CHOREO_DEVICES_SECRET": "s"}),
                         transport_factory=lambda config: MemoryTransport(broker, config),
                         status_stream=io.StringIO())
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))

    def published(topic: str) -> list[bytes]:
        return [m.payload for m in broker.history if m.topic == topic]

    await async_wait_for(lambda: published("zigbee2mqtt/lab_climate"), 5, "a Zigbee2MQTT reading")
    assert json.loads(broker.retained["zigbee2mqtt/bridge/devices"].payload)[1]["friendly_name"] == "lab_plug"
    assert broker.retained["zigbee2mqtt/lab_plug/availability"].payload == b'{"state":"online"}'
    assert broker.retained["tele/sonoff-lab/LWT"].payload == b"Online"

    commander = MemoryTransport(broker, ClientConfig(client_id="bridge"))
    await commander.__aenter__()
    commander.publish(Message("cmnd/sonoff-lab/POWER", b"ON"))
    commander.publish(Message("zigbee2mqtt/lab_plug/set", b"nonsense"))
    commander.publish(Message("zigbee2mqtt/lab_plug/set", b'{"state": "ON"}'))
    await async_wait_for(lambda: b"ON" in published("stat/sonoff-lab/POWER"), 5, "Tasmota's POWER answer")
    await async_wait_for(lambda: b'"state":"ON"' in b"".join(published("zigbee2mqtt/lab_plug")), 5,
                         "the plug's ON report")
    assert runner.snapshot()["errors"] == 1  # the nonsense, counted
    stop.set()
    await running
    assert runner.snapshot()["actuations"] == 2
    assert broker.retained["tele/sonoff-lab/LWT"].payload == b"Offline"
    assert broker.retained["zigbee2mqtt/bridge/state"].payload == b'{"state":"offline"}'
    assert broker.retained["zigbee2mqtt/lab_climate/availability"].payload == b'{"state":"offline"}'


def test_a_profile_sensor_can_be_stuck_and_skewed_but_its_payloads_stay_the_conventions():
    fleet = Fleet.model_validate({"seed": 1, "faults": {"stuck": 1, "clock_skew": 1, "clock_skew_seconds": 7200,
                                                        "malformed": 1},
                                  "sites": [{"id": "s", "rooms": [{"id": "r", "devices": [
                                      {"kind": "temperature", "profile": "tasmota", "native": "th-r"}]}]}]})
    simulation = SimulatedFleet(fleet)
    [member] = simulation.members
    first, second = (json.loads(simulation.readings(member)[0].payload) for _ in range(2))
    assert first["AM2301"] == second["AM2301"]  # stuck
    ahead = (datetime.fromisoformat(first["Time"]) - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
    assert 7100 < ahead < 7300 and first["TempUnit"] == "C"  # skewed, and never malformed


async def test_a_dropout_takes_the_zigbee2mqtt_bridge_away_with_its_will_and_back_with_its_birth():
    broker = MemoryBroker()
    fleet = {**FLEET, "faults": {"dropout": 1, "dropout_seconds": 0.2}}
    runner = FleetRunner(Fleet.model_validate(fleet), load_settings({"CHOREO_DEVICES_SECRET": "s"}),
                         transport_factory=lambda config: MemoryTransport(broker, config), status_stream=io.StringIO())
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))

    def bridge_states() -> list[bytes]:
        return [m.payload for m in broker.history if m.topic == "zigbee2mqtt/bridge/state"]

    await async_wait_for(lambda: bridge_states()[-3:] == [b'{"state":"online"}', b'{"state":"offline"}',
                                                          b'{"state":"online"}'], 5, "the bridge away and back")
    stop.set()
    await running
    assert runner.snapshot()["faults"]["dropout"] >= 1 and runner.snapshot()["reconnects"] >= 1
