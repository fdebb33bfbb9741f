"""Hostile input, retained facts and oversized payloads on the real broker, the services as OS processes.

Who may publish where (the ACL generated from the declarations): a device only on devices/{its id}/telemetry|status,
which ingest reads; a fact type only the service that declares it (reading.v1: ingest),
which the reactors consuming that type and the sink (events/#) read; `admin` anywhere.
The test publishes as `admin`, so one client can put every row of the table
(tests/test_hostile_input.py) on the topic of the service it attacks, with a valid device
reading after each. What InfluxDB stored is read with plain /query.
"""
from __future__ import annotations

import ast
import json
import re
import uuid
from collections import Counter
from datetime import datetime

import paho.mqtt.client as paho
import pytest

from gateway.credentials import device_password
from gateway.plugins import reactor_names
from tests.helpers import MqttObserver, influx_query, wait_for
from tests.test_hostile_input import ROWS, fact_document, readers

pytestmark = pytest.mark.integration

SERVICES = {"sink": ["sink"], **{name: ["reactor", name] for name in reactor_names()}, "ingest": ["ingest"]}
SOURCE = {"ingest": "gateway/ingest", "sink": "gateway/sink", **{name: f"reactor/{name}" for name in reactor_names()}}
RETAINED = {  # forged or stale copies kept by the broker, handed to each new subscription
    "events/reading.v1/forged-1": json.dumps(fact_document("forged-1")).encode(),
    "events/alert.raised.v1/forged-2": json.dumps(fact_document("forged-2", "alert.raised.v1")).encode(),
    "devices/forged-3/telemetry": b'{"seq": 1, "temperature": 99}',
}
SETTINGS = {"CHOREO_INFLUX_FLUSH_INTERVAL": "0.2", "CHOREO_REACTORS_AVAILABILITY_SILENCE_SECONDS": "3600"}
WIRE = [row for row in ROWS if row.wire]
REJECTED = [row for row in WIRE if row.reason is not None]
ACCEPTED = [row for row in WIRE if row.reason is None]


def query(stack, statement: str) -> list[dict]:
    return influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password, statement)


def stop_counts(log: str, name: str) -> Counter:
    """The counts a service logs when it stops: `NAME stopped: {counts} {transport stats}`."""
    [counts] = re.findall(rf"{name} stopped: (\{{.*?\}}) \{{", log)
    return Counter(ast.literal_eval(counts))


def micros(rfc3339: str) -> int:
    moment = datetime.fromisoformat(rfc3339)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def test_hostile_rows_become_one_rejection_per_reader_and_nothing_else_is_lost(fresh_stack, services, fleet_file):
    stack = fresh_stack
    settings = {**SETTINGS, "CHOREO_FLEET_FILE": str(fleet_file), "CHOREO_REACTORS_STATE_DIR": str(fleet_file.parent)}
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "hostile-admin") as admin:
        admin.subscribe("choreo/services/+")
        for topic, payload in RETAINED.items():
            admin.publish(topic, payload, retain=True)
        for name, command in SERVICES.items():
            services.start(name, command, {**stack.env(name), **settings})
        wait_for(lambda: {m.topic.split("/")[2] for m in admin.messages if b'"online"' in m.payload} >= set(SERVICES),
                 30, "every service online")

        messages = []
        for index, row in enumerate(WIRE):
            messages += [(row.topic, row.payload), (f"devices/ok-{index}/telemetry",
                                                    json.dumps({"seq": 1, "temperature": 20 + index / 4}).encode())]
        admin.publish_all(messages)

        expected = sum(len(readers(row.topic)) for row in REJECTED)
        forged = {json.loads(row.payload)["id"] for row in ACCEPTED if row.topic.startswith("events/")}

        def rejections() -> list[dict]:  # all stored, but those the table sent as accepted rows
            stored = query(stack, "SELECT * FROM events WHERE type = 'event.rejected.v1'")
            return [r for r in stored if r["id"] not in forged]

        def all_there() -> bool:
            stored = len(query(stack, "SELECT temperature FROM readings WHERE device =~ /^ok-/"))
            return len(rejections()) >= expected and stored >= len(WIRE)

        wait_for(all_there, 30, f"{expected} rejections and {len(WIRE)} valid readings stored")
        assert {name: process.poll() for name, process in services.processes.items()} == dict.fromkeys(SERVICES)
    services.stop_all()
    assert {name: process.returncode for name, process in services.processes.items()} == dict.fromkeys(SERVICES, 0)

    # Every hostile row: exactly one rejection from each service that reads it, naming the reason.
    stored = rejections()
    assert len(stored) == expected
    for row in WIRE:
        mine = [r for r in stored if json.loads(r["data"])["topic"] == row.topic]
        wanted = {} if row.reason is None else {SOURCE[name]: 1 for name in readers(row.topic)}
        assert Counter(r["source"] for r in mine) == wanted, row.name
        assert all(json.loads(r["data"])["reason"].startswith(row.reason) for r in mine), row.name

    # Every accepted row stored exactly; every valid reading stored with its value.
    for row in ACCEPTED:
        if row.topic.startswith("devices/"):
            if row.topic.endswith("/telemetry"):  # a reading: one point in `readings`, its metrics as fields
                sent = json.loads(row.payload)
                [reading] = query(stack, f"SELECT * FROM readings WHERE device = '{row.name}'")
                measured = {k: v for k, v in sent.items() if k != "seq"}
                assert {k: reading[k] for k in measured} == measured
                assert reading["sequence"] == sent["seq"]
            else:
                [event] = query(stack, f"SELECT * FROM events WHERE subject = '{row.name}'")
            continue
        sent = json.loads(row.payload)
        readings = query(stack, f"SELECT * FROM readings WHERE id = '{sent['id']}'")
        if readings:  # a reading event: one point in `readings`, its measurements as fields
            [reading] = readings
            assert (reading["device"], reading["source"]) == (sent["subject"], sent["source"]), row.name
            assert {m["name"]: (m["value"], m["unit"]) for m in sent["data"]["measurements"]} == {
                m["name"]: (reading[m["name"]], reading["unit." + m["name"]]) for m in sent["data"]["measurements"]}
            assert (reading["time"] // 1000, reading["sequence"]) == (micros(sent["time"]), sent["sequence"]), row.name
            continue
        [event] = query(stack, f"SELECT * FROM events WHERE id = '{sent['id']}'")
        assert (event["type"], event["subject"], event["source"]) == (sent["type"], sent["subject"], sent["source"])
        assert {k: v for k, v in json.loads(event["data"]).items() if v is not None} == sent["data"], row.name
        assert (event["time"] // 1000, event["sequence"]) == (micros(sent["time"]), sent["sequence"]), row.name
    values = {r["device"]: r["temperature"] for r in query(stack, "SELECT * FROM readings WHERE device =~ /^ok-/")}
    assert values == {f"ok-{index}": 20 + index / 4 for index in range(len(WIRE))}

    # Retained copies were ignored and counted by every service that got one. The broker hands them
    # over on subscribing, before any live message, so had the sink kept one it would be stored by now.
    assert query(stack, "SELECT * FROM events WHERE subject =~ /^forged/") == []
    for name in SERVICES:  # the counts each service logs as it stops
        counts = stop_counts(services.log(name), name)
        assert counts["ignored_retained"] == sum(readers(topic).count(name) for topic in RETAINED), name
        assert counts["rejected"] == sum(readers(row.topic).count(name) for row in REJECTED), name
        if name in readers("events/reading.v1/") and name != "sink":
            assert counts["consumed"] >= len(WIRE), name  # every valid reading handled


def test_a_payload_over_the_broker_limit_is_refused_and_counted_in_the_broker_log(stack):
    """max_packet_size 262144 (mosquitto/conf.d/choreo.conf): the broker disconnects the client
    (MQTT 5 reason 0x95, packet too large) before the message reaches anyone, and logs one
    `Client ID disconnected due to oversize packet.` per refusal; $SYS has no counter for it."""
    refusals = "disconnected due to oversize packet"

    def logged() -> int:
        return stack.broker.log_path.read_text(errors="replace").count(refusals)

    before = logged()
    device = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="dev-a", protocol=paho.MQTTv5)
    device.username_pw_set("dev-a", device_password(stack.credentials.fleet_secret, "dev-a"))
    disconnects = []
    device.on_disconnect = lambda client, userdata, flags, reason, properties: disconnects.append(reason)
    device.reconnect_delay_set(60, 60)  # no second attempt (and second refusal) while the test looks
    admin = MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], f"big-{uuid.uuid4().hex[:6]}")
    with admin:
        admin.subscribe("devices/dev-a/#")
        device.connect("127.0.0.1", stack.broker.device_port)
        device.loop_start()
        try:
            device.publish("devices/dev-a/telemetry", b"x" * 262_144, qos=1)
            wait_for(lambda: disconnects, 10, "the broker to disconnect the client")
        finally:
            device.loop_stop()
        assert [str(reason) for reason in disconnects] == ["Packet too large"]
        wait_for(lambda: logged() == before + 1, 10, "the broker's log line for the refusal")
        # The broker dropped the packet before routing it: a later message arrives, the big one never did.
        admin.publish("devices/dev-a/status", b"marker")
        wait_for(lambda: admin.on("devices/dev-a/status"), 10, "the marker")
        assert admin.on("devices/dev-a/telemetry") == []
