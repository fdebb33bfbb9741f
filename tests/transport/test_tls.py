"""The TLS listener with the locally generated CA, checked from both sides with paho-mqtt as the independent client."""
import ssl
import uuid

import paho.mqtt.client as paho
import pytest

from gateway.credentials import device_password
from gateway.errors import ConfigError, TransportError
from gateway.settings import load_settings
from gateway.transport import ClientConfig, Message, MqttTransport
from gateway.transport.base import tls_context
from tests.helpers import MqttObserver, wait_for

pytestmark = pytest.mark.integration


def tls_settings(stack, **extra):
    """A device on the TLS listener (the device listener, with TLS)."""
    return load_settings({"CHOREO_MQTT_PORT": str(stack.broker.tls_port), "CHOREO_MQTT_USERNAME": "dev-b",
                          "CHOREO_MQTT_PASSWORD": device_password(stack.credentials.fleet_secret, "dev-b"),
                          **extra}).mqtt


async def test_a_device_publishes_over_tls_verified_against_the_local_ca(stack):
    topic = "devices/dev-b/telemetry"
    payload = f"over tls {uuid.uuid4().hex}".encode()
    observer = MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], f"tls-{uuid.uuid4().hex[:6]}")
    with observer:
        observer.subscribe(topic)
        settings = tls_settings(stack, CHOREO_MQTT_TLS_CA=str(stack.broker.tls["ca.crt"]))
        async with MqttTransport(ClientConfig.from_settings(settings, "dev-b")) as device:
            await device.publish(Message(topic, payload))
        wait_for(lambda: [m for m in observer.on(topic) if m.payload == payload], 10, "the message over TLS")


def test_the_tls_listener_takes_device_accounts_only(stack):
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"tls-admin-{uuid.uuid4().hex[:6]}",
                         protocol=paho.MQTTv5)
    client.tls_set(ca_certs=str(stack.broker.tls["ca.crt"]), cert_reqs=ssl.CERT_REQUIRED)
    client.username_pw_set("admin", stack.credentials.mqtt["admin"])
    answers = []
    client.on_connect = lambda c, u, flags, reason, props: answers.append(reason)
    client.connect("127.0.0.1", stack.broker.tls_port)
    client.loop_start()
    try:
        wait_for(lambda: answers, 10, "the broker's answer")
    finally:
        client.loop_stop()
    assert answers[0].is_failure


async def test_a_broker_the_ca_does_not_vouch_for_is_refused(stack, tmp_path):
    other_ca = tmp_path / "other"
    from gateway.localstack import make_tls_files

    files = make_tls_files(other_ca)
    settings = tls_settings(stack, CHOREO_MQTT_TLS_CA=str(files["ca.crt"]))
    with pytest.raises(TransportError, match="certificate verify failed") as refused:
        async with MqttTransport(ClientConfig.from_settings(settings, "tls-wrong-ca")):
            pass
    assert not refused.value.retryable


def test_missing_tls_files_are_a_clear_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="mqtt TLS files"):
        tls_context(load_settings({"CHOREO_MQTT_TLS_CA": str(tmp_path / "missing.crt")}).mqtt)


def test_the_plain_listener_stays_plain(stack):
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"plain-{uuid.uuid4().hex[:6]}")
    client.tls_set(ca_certs=str(stack.broker.tls["ca.crt"]))
    with pytest.raises((ssl.SSLError, ConnectionResetError)):  # a TLS hello on a plain listener
        client.connect("127.0.0.1", stack.broker.port)
