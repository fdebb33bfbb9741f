"""The TLS listener with the locally generated CA, checked from both sides with paho-mqtt as the independent client."""
import ssl
import uuid

import paho.mqtt.client as paho
import pytest

from gateway.errors import ConfigError, TransportError
from gateway.settings import load_settings
from gateway.transport import ClientConfig, Message, MqttTransport
from gateway.transport.base import tls_context
from tests.helpers import MqttObserver, wait_for

pytestmark = pytest.mark.integration


def tls_settings(stack, **extra):
    return load_settings({"CHOREO_MQTT_PORT": str(stack.broker.tls_port), "CHOREO_MQTT_USERNAME": "admin",
                          "CHOREO_MQTT_PASSWORD": stack.credentials.mqtt["admin"], **extra}).mqtt


async def test_publish_over_tls_verified_against_the_local_ca(stack):
    topic = f"tls/{uuid.uuid4().hex[:8]}"
    observer = MqttObserver(stack.broker.tls_port, "admin", stack.credentials.mqtt["admin"], f"tls-{uuid.uuid4().hex[:6]}")
    observer.client.tls_set(ca_certs=str(stack.broker.tls["ca.crt"]), cert_reqs=ssl.CERT_REQUIRED)
    with observer:
        observer.subscribe(topic)
        settings = tls_settings(stack, CHOREO_MQTT_TLS_CA=str(stack.broker.tls["ca.crt"]))
        async with MqttTransport(ClientConfig.from_settings(settings, f"tls-pub-{uuid.uuid4().hex[:6]}")) as publisher:
            await publisher.publish(Message(topic, b"over tls"))
        wait_for(lambda: observer.on(topic), 10, "the message over TLS")
    assert observer.on(topic)[0].payload == b"over tls"


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
