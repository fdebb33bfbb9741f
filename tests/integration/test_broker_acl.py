"""The ACL generated from the declarations, on the real broker: each client acts only within its role.

Every forbidden publish is followed by an allowed one from the same client; once the
allowed one has arrived, the forbidden one would have arrived before it (MQTT keeps a
client's order), so its absence is proof, not a timeout.
"""
import uuid
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest

from gateway.credentials import device_password
from gateway.declarations import declarations
from gateway.errors import Refused
from gateway.localstack import LocalStack
from gateway.settings import load_settings
from gateway.transport import ClientConfig, Message, MqttTransport
from tests.conftest import TEST_DEVICES
from tests.helpers import MqttObserver, connack, wait_for
from tests.test_declarations import services_file

pytestmark = pytest.mark.integration
NOT_AUTHORIZED = 0x87


def device(stack, device_id: str) -> MqttObserver:
    return MqttObserver(stack.broker.device_port, device_id, device_password(stack.credentials.fleet_secret, device_id),
                        client_id=device_id)


def admin(stack, name: str) -> MqttObserver:
    return MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], f"{name}-{uuid.uuid4().hex[:6]}")


def test_a_device_publishes_only_under_its_own_id_and_cannot_forge_facts(stack):
    with admin(stack, "acl-watch") as watcher, device(stack, "dev-a") as dev_a:
        watcher.subscribe("devices/#")
        watcher.subscribe("events/#")
        dev_a.publish("devices/dev-b/telemetry", b'{"seq": 1, "temperature": 99}')  # impersonation
        dev_a.publish("events/alert.raised.v1/dev-a", b"{}")  # a forged fact
        dev_a.publish("devices/dev-a/telemetry", b'{"seq": 1, "temperature": 20}')  # its own: allowed
        wait_for(lambda: watcher.on("devices/dev-a/telemetry"), 10, "the allowed publish")
        assert watcher.on("devices/dev-b/") == [] and watcher.on("events/") == []


def test_a_device_reads_only_facts_addressed_to_it(stack):
    with admin(stack, "acl-pub") as publisher, device(stack, "dev-b") as dev_b:
        dev_b.subscribe("events/#")
        dev_b.subscribe("devices/#")
        publisher.publish("events/reading.v1/dev-a", b"someone else's fact")
        publisher.publish("devices/dev-a/telemetry", b"someone else's telemetry")
        publisher.publish("events/actuation.requested.v1/dev-b", b"for dev-b")
        wait_for(lambda: dev_b.on("events/actuation.requested.v1/dev-b"), 10, "the fact addressed to dev-b")
        assert [m.topic for m in dev_b.messages] == ["events/actuation.requested.v1/dev-b"]


def test_a_service_publishes_only_the_types_it_declares(stack):
    threshold = MqttObserver(stack.broker.port, "threshold", stack.credentials.mqtt["threshold"],
                             f"threshold-acl-{uuid.uuid4().hex[:6]}")
    with admin(stack, "acl-watch2") as watcher, threshold:
        watcher.subscribe("events/#")
        threshold.publish("events/actuation.requested.v1/lab-fan-1", b"{}")  # climate's type, not threshold's
        threshold.publish("events/alert.raised.v1/dev-a", b"{}")
        wait_for(lambda: watcher.on("events/alert.raised.v1/dev-a"), 10, "the declared type")
        assert watcher.on("events/actuation.requested.v1/") == []


@pytest.mark.parametrize("username", ["dev-+", "dev-#", "+", "#"])
def test_wildcards_in_a_username_do_not_authenticate(stack, username):
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"w-{uuid.uuid4().hex[:6]}", protocol=paho.MQTTv5)
    client.username_pw_set(username, device_password(stack.credentials.fleet_secret, "dev-a"))
    result = {}
    client.on_connect = lambda c, u, flags, reason, props: result.setdefault("reason", reason)
    client.connect("127.0.0.1", stack.broker.device_port)
    client.loop_start()
    try:
        wait_for(lambda: "reason" in result, 10, "the broker's answer")
    finally:
        client.loop_stop()
    assert result["reason"].is_failure


def test_each_listener_takes_only_its_own_accounts(stack):
    dev_a = device_password(stack.credentials.fleet_secret, "dev-a")
    assert connack(stack.broker.port, "dev-a", dev_a).is_failure  # a device on the service listener
    assert connack(stack.broker.device_port, "sink", stack.credentials.mqtt["sink"]).is_failure
    assert not connack(stack.broker.device_port, "dev-a", dev_a).is_failure


def test_a_device_cannot_take_over_a_service_session_or_another_device(stack):
    """On the device listener the client id is the username, whatever the device asks for."""
    target = f"sink-{uuid.uuid4().hex[:6]}"
    service = MqttObserver(stack.broker.port, "sink", stack.credentials.mqtt["sink"], client_id=target)
    other_device = device(stack, "dev-b")
    disconnects = []
    service.client.on_disconnect = other_device.client.on_disconnect = (
        lambda client, userdata, flags, reason, props: disconnects.append(client._client_id))
    with service, other_device:
        for taken in (target, "dev-b"):
            password = device_password(stack.credentials.fleet_secret, "dev-a")
            with MqttObserver(stack.broker.device_port, "dev-a", password, client_id=taken) as hijacker:
                hijacker.publish("devices/dev-a/telemetry", b'{"seq": 1, "temperature": 20}')
        # A round trip each: a takeover's DISCONNECT would have reached them before these PUBACKs.
        service.publish("events/event.rejected.v1/dev-a", b"{}")
        other_device.publish("devices/dev-b/telemetry", b'{"seq": 1, "temperature": 20}')
        assert disconnects == []


def test_only_admin_reads_sys_and_everything_under_hash(fresh_stack):
    """Mosquitto grants any subscription and filters each delivery by the ACL; a marker message that
    the subscriber may read, sent last, shows that nothing before it got through. A fresh broker:
    no retained messages from other tests."""
    stack = fresh_stack
    threshold = MqttObserver(stack.broker.port, "threshold", stack.credentials.mqtt["threshold"],
                             f"threshold-hash-{uuid.uuid4().hex[:6]}")
    with admin(stack, "acl-sys") as operator, device(stack, "dev-b") as dev_b, threshold:
        operator.subscribe("$SYS/broker/version")  # retained: delivered on subscription
        wait_for(lambda: operator.on("$SYS/"), 10, "$SYS for the admin")
        for client in (dev_b, threshold):
            client.subscribe("#")
            client.subscribe("$SYS/#")
        operator.publish("devices/dev-a/telemetry", b'{"seq": 1, "temperature": 20}')
        operator.publish("events/alert.raised.v1/dev-a", b"{}")
        operator.publish("events/actuation.requested.v1/dev-b", b"marker")  # dev-b may read this
        operator.publish("events/reading.v1/dev-a", b"marker")  # threshold may read this
        wait_for(lambda: dev_b.on("events/actuation.requested.v1/dev-b") and threshold.on("events/reading.v1/"), 10,
                 "the markers")
        assert [m.topic for m in dev_b.messages] == ["events/actuation.requested.v1/dev-b"]
        assert [m.topic for m in threshold.messages] == ["events/reading.v1/dev-a"]


# A service declared in a services file, in any language ---------------------------------------------------------


@pytest.fixture(scope="module")
def declared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack whose declarations include `shout` (services file: consumes alert.raised.v1, emits alert.shouted.v1)."""
    folder = tmp_path_factory.mktemp("declared")
    settings = load_settings({"CHOREO_SERVICES_FILE": str(services_file(folder))})
    with LocalStack(folder / "stack", TEST_DEVICES, declarations(settings)) as running:
        yield running


def shout(stack: LocalStack) -> MqttObserver:
    return MqttObserver(stack.broker.port, "shout", stack.credentials.mqtt["shout"], f"shout-{uuid.uuid4().hex[:6]}")


def test_a_file_declared_service_publishes_its_type_and_its_schema_announcement_and_nothing_else(declared_stack):
    stack = declared_stack
    forbidden = ["events/alert.raised.v1/dev-a",  # a type it consumes, does not emit
                 "events/actuation.requested.v1/dev-a",  # another service's type
                 "choreo/schemas/alert.shouted.v1/threshold",  # its type, announced in another service's name
                 "choreo/schemas/alert.raised.v1/shout",  # a type it does not emit, announced in its own name
                 "choreo/services/threshold",  # another service's manifest
                 "devices/dev-a/telemetry", "events/alert.shouted.v1/dev-a/extra"]
    allowed = ["choreo/services/shout", "choreo/schemas/alert.shouted.v1/shout", "events/alert.shouted.v1/dev-a"]
    with admin(stack, "declared-watch") as watcher, shout(stack) as service:
        watcher.subscribe("#")
        answers: dict[int, paho.ReasonCode] = {}
        service.client.on_publish = lambda client, userdata, mid, reason, props: answers.__setitem__(mid, reason)
        sent = {topic: service.client.publish(topic, b"shouted", qos=1) for topic in forbidden + allowed}
        wait_for(lambda: watcher.on(allowed[-1]), 10, "the last allowed publish")  # sent last: all others before it
        assert sorted(m.topic for m in watcher.messages if m.payload == b"shouted") == sorted(allowed)
        wait_for(lambda: len(answers) == len(sent), 10, "a PUBACK for every publish")
        assert {topic: answers[info.mid].value for topic, info in sent.items()} == \
            {topic: NOT_AUTHORIZED if topic in forbidden else 0 for topic in sent}


def test_a_file_declared_service_reads_what_it_consumes_and_the_announcements_only(declared_stack):
    stack = declared_stack
    with admin(stack, "declared-pub") as publisher, shout(stack) as service:
        service.subscribe("#")
        for topic in ("events/reading.v1/dev-a", "events/alert.shouted.v1/dev-a", "choreo/services/threshold",
                      "devices/dev-a/telemetry", "choreo/schemas/alert.raised.v1/threshold",
                      "events/alert.raised.v1/dev-a"):  # readable: the last two, the marker last
            publisher.publish(topic, b"for shout?")
        wait_for(lambda: service.on("events/alert.raised.v1/dev-a"), 10, "the consumed type")
        assert [m.topic for m in service.messages] == ["choreo/schemas/alert.raised.v1/threshold",
                                                       "events/alert.raised.v1/dev-a"]


async def test_the_gateway_transport_is_refused_an_announcement_in_another_services_name(declared_stack):
    stack = declared_stack
    config = ClientConfig(f"shout-{uuid.uuid4().hex[:6]}", port=stack.broker.port, username="shout",
                          password=stack.credentials.mqtt["shout"], clean_start=True, session_expiry=0)
    with admin(stack, "declared-watch2") as watcher:
        watcher.subscribe("choreo/schemas/#")
        async with MqttTransport(config) as transport:
            with pytest.raises(Refused) as refused:
                await transport.publish(Message("choreo/schemas/alert.shouted.v1/threshold", b"{}"))
            await transport.publish(Message("choreo/schemas/alert.shouted.v1/shout", b"{}"))
        wait_for(lambda: watcher.on("choreo/schemas/alert.shouted.v1/shout"), 10, "its own announcement")
    assert refused.value.reason_code == NOT_AUTHORIZED
    assert refused.value.topic == "choreo/schemas/alert.shouted.v1/threshold"
    assert [m.topic for m in watcher.messages] == ["choreo/schemas/alert.shouted.v1/shout"]
