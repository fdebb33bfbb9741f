"""The control packets and properties of the transport's own MQTT 5 codec, byte by byte.

Round trips through Mosquitto are in test_mqtt.py and test_behaviour.py; these pin the layouts
of the specification and what a broker rarely sends: unknown or cut properties, refusals."""
import pytest

from gateway.transport import ClientConfig, Message
from gateway.transport.control import (
    Connack,
    connect_packet,
    parse_connack,
    parse_disconnect,
    parse_suback,
    subscribe_packet,
)
from gateway.transport.framing import MalformedPacket, split_packets
from gateway.transport.packets import parse_publish, publish_packet
from gateway.transport.properties import encode_properties, read_properties


def test_a_connect_is_laid_out_as_the_specification_says():
    config = ClientConfig("c1", username="u", password="p", keepalive=30, session_expiry=3600,
                          receive_maximum=1000, will=Message("s", b"off", retain=True))
    [(first_byte, body)], rest = split_packets(connect_packet(config))
    assert first_byte == 0x10 and rest == b""
    assert body[:7] == b"\x00\x04MQTT\x05"
    # username, password, will retain, will QoS 1, will flag; clean start off (a persistent session)
    assert body[7] == 0x80 | 0x40 | 0x20 | 0x08 | 0x04
    assert body[8:10] == b"\x00\x1e"  # keep alive 30
    # receive maximum 1000, session expiry 3600, maximum packet size 1 MiB
    assert body[10:24] == b"\x0d" + b"\x21\x03\xe8" + b"\x11\x00\x00\x0e\x10" + b"\x27\x00\x10\x00\x00"
    assert body[24:] == b"\x00\x02c1" + b"\x00" + b"\x00\x01s" + b"\x00\x03off" + b"\x00\x01u" + b"\x00\x01p"


def test_a_connect_without_credentials_or_will_asks_for_a_clean_start_when_told():
    [(_, body)], _ = split_packets(connect_packet(ClientConfig("c", clean_start=True, session_expiry=0)))
    assert body[7] == 0x02 and body.endswith(b"\x00\x01c")


@pytest.mark.parametrize("body, connack", [
    (b"\x01\x00", Connack(True, 0)),  # MQTT 3.1.1 form, no properties: the defaults
    (b"\x00\x00\x00", Connack(False, 0)),
    (b"\x00\x00\x08" + b"\x21\x00\x0a" + b"\x13\x00\x05" + b"\x24\x01",  # receive maximum 10, keep alive 5, max QoS
     Connack(False, 0, receive_maximum=10, keepalive=5)),
    (b"\x00\x87\x08\x1f\x00\x05nope!", Connack(False, 0x87, reason="nope!")),
])
def test_a_connack_gives_the_session_the_reason_and_the_brokers_limits(body, connack):
    assert parse_connack(body) == connack


def test_a_subscribe_carries_qos_and_retain_handling():
    assert subscribe_packet(7, "a/#", 1, 1) == b"\x82\x09\x00\x07\x00\x00\x03a/#\x11"


@pytest.mark.parametrize("body, answer", [
    (b"\x00\x07\x00\x01", (7, (1,))),
    (b"\x00\x07\x03\x1f\x00\x00\x87", (7, (0x87,))),  # an empty reason string, then not authorized
])
def test_a_suback_gives_its_packet_id_and_reason_codes(body, answer):
    assert parse_suback(body) == answer


@pytest.mark.parametrize("body, answer", [
    (b"", (0, "")), (b"\x8e", (0x8E, "")), (b"\x8e\x05\x1f\x00\x02hi", (0x8E, "hi")),
])
def test_a_disconnect_from_the_broker_gives_its_reason(body, answer):
    assert parse_disconnect(body) == answer


def test_properties_of_every_form_are_read_and_user_properties_kept_in_order():
    properties = (b"\x01\x01" + b"\x23\x00\x02" + b"\x02\x00\x00\x00\x3c" + b"\x0b\x81\x01"
                  + b"\x03\x00\x04json" + b"\x09\x00\x02\xca\xfe"
                  + b"\x26\x00\x01a\x00\x01b" + b"\x26\x00\x01a\x00\x01c")
    single, user, end = read_properties(bytes([len(properties)]) + properties + b"rest", 0)
    assert single == {0x01: 1, 0x23: 2, 0x02: 60, 0x0B: 129, 0x03: "json", 0x09: b"\xca\xfe"}
    assert user == (("a", "b"), ("a", "c")) and end == len(properties) + 1


@pytest.mark.parametrize("properties", [
    b"\x05\x00",  # an identifier MQTT 5 does not define
    b"\x21\x00",  # a two-byte property cut short
    b"\x26\x00\x01a\x00\x05b",  # a user property longer than the properties
    b"\x26\x00\x01a\x00\x01\xff",  # a user property that is not UTF-8
])
def test_malformed_properties_are_refused(properties):
    with pytest.raises(MalformedPacket):
        read_properties(bytes([len(properties)]) + properties, 0)


def test_user_properties_of_a_publish_round_trip():
    message = Message("t", b"x", user_properties=(("traceparent", "00-ab-cd-01"), ("empty", "")))
    assert encode_properties(user=message.user_properties).startswith(b"\x25\x26\x00\x0btraceparent")  # length 37
    [(first_byte, body)], _ = split_packets(publish_packet(message, 3))
    assert parse_publish(first_byte, body) == (message, 3)
