"""The transport's own PUBLISH and PUBACK encoding, and the framing of what the broker sends.

Round trips through a real broker are in test_mqtt.py; these pin the byte layout and the
edge cases a broker rarely produces: packets split across reads, properties, bad lengths."""
import pytest

from gateway.transport import Message
from gateway.transport.framing import MalformedPacket, split_packets, variable_byte_integer
from gateway.transport.packets import parse_puback, parse_publish, puback_packet, publish_packet, resent
from gateway.transport.reasons import reason_name


@pytest.mark.parametrize("value, encoded", [
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"), (16_384, b"\x80\x80\x01"),
    (268_435_455, b"\xff\xff\xff\x7f"),  # the examples of MQTT 5, 1.5.5
])
def test_variable_byte_integers_match_the_specification(value, encoded):
    assert variable_byte_integer(value) == encoded


def test_a_qos1_publish_is_laid_out_as_the_specification_says():
    packet = publish_packet(Message("a/b", b"hi", retain=True), mid=10)
    # type 3, QoS 1, retain; length 10; topic "a/b"; packet id 10; no properties; payload
    assert packet == b"\x33\x0a\x00\x03a/b\x00\x0a\x00hi"


def test_a_qos0_publish_has_no_packet_id():
    assert publish_packet(Message("t", b"x", qos=0), mid=None) == b"\x30\x05\x00\x01t\x00x"


@pytest.mark.parametrize("message, mid", [
    (Message("devices/d-1/telemetry", b'{"seq": 1}'), 65535),
    (Message("events/reading.v1/d-1", bytes(300), qos=0, retain=True), None),
    (Message("t/\u00e9", b""), 1),
])
def test_what_is_encoded_parses_back(message, mid):
    [(first_byte, body)], rest = split_packets(publish_packet(message, mid))
    assert rest == b"" and parse_publish(first_byte, body) == (message, mid)


def test_packets_split_across_reads_come_out_whole_and_in_order():
    stream = b"".join(publish_packet(Message(f"t/{n}", bytes(n * 50)), n + 1) for n in range(5)) + puback_packet(7)
    packets, unparsed = [], b""
    for start in range(0, len(stream), 7):  # seven bytes a read: lengths and headers split too
        complete, unparsed = split_packets(unparsed + stream[start:start + 7])
        packets += complete
    assert unparsed == b""
    assert [parse_publish(*p)[0].topic for p in packets[:5]] == [f"t/{n}" for n in range(5)]
    assert packets[5][0] == 0x40 and parse_puback(packets[5][1]) == (7, 0)


def test_publish_properties_from_the_broker_are_skipped():
    properties = b"\x01\x01" + b"\x0b\x05"  # payload format indicator 1, subscription identifier 5
    body = b"\x00\x01t" + b"\x00\x02" + bytes([len(properties)]) + properties + b"payload"
    assert parse_publish(0x32, body) == (Message("t", b"payload"), 2)


@pytest.mark.parametrize("first_byte, body", [
    (0x30, b"\x00\x00\x00x"),  # empty topic: a topic alias, never allowed by this client
    (0x32, b"\x00\x01t\x00"),  # shorter than its packet id
    (0x30, b"\x00\x01t\x09"),  # properties longer than the packet
    (0x30, b"\x00\x09t"),  # topic longer than the packet
    (0x36, b"\x00\x01t\x00\x01\x00x"),  # QoS 3 (MQTT 5, 3.3.1.2)
    (0x30, b"\x00\x02t\xff\x00x"),  # a topic that is not UTF-8 (1.5.4)
    (0x30, b"\x00\x02t\x00\x00x"),  # a topic with U+0000 (1.5.4)
])
def test_malformed_publishes_are_refused(first_byte, body):
    with pytest.raises(MalformedPacket):
        parse_publish(first_byte, body)


def test_a_length_of_five_bytes_is_refused():
    with pytest.raises(MalformedPacket, match="more than four bytes"):
        split_packets(b"\x30\xff\xff\xff\xff\x01")


def test_a_topic_too_long_for_mqtt_is_refused_before_sending():
    with pytest.raises(ValueError, match="exceeds MQTT's 65535"):
        publish_packet(Message("t" * 70_000, b"x"), 1)


@pytest.mark.parametrize("body, answer", [
    (b"\x00\x07", (7, 0)),  # remaining length 2: success without a reason code (3.4.2.1)
    (b"\x00\x07\x10", (7, 0x10)),  # "no matching subscribers" is still a success
    (b"\x00\x07\x87\x00", (7, 0x87)),  # not authorized, with an empty property length
])
def test_a_puback_gives_its_packet_id_and_reason(body, answer):
    assert parse_puback(body) == answer


def test_a_puback_without_a_packet_id_is_malformed():
    with pytest.raises(MalformedPacket):
        parse_puback(b"\x00")


def test_refusals_are_named_as_the_specification_names_them():
    assert reason_name(0x87) == "not authorized (0x87)"
    assert reason_name(0x97) == "quota exceeded (0x97)"
    assert reason_name(0xFE) == "unknown reason (0xfe)"


def test_a_publish_sent_again_carries_the_dup_flag_and_nothing_else_changes():
    packet = publish_packet(Message("a/b", b"hi", retain=True), mid=10)
    again = resent(packet)
    assert again[0] == packet[0] | 0x08 and again[1:] == packet[1:]
    [(first_byte, body)], _ = split_packets(again)
    assert parse_publish(first_byte, body) == (Message("a/b", b"hi", retain=True), 10)


def test_a_packet_above_the_announced_maximum_is_refused_before_it_is_buffered():
    header = b"\x30" + variable_byte_integer(2 * 1024 * 1024)  # a PUBLISH of 2 MiB, its first bytes only
    with pytest.raises(MalformedPacket, match="above the maximum packet size we announced"):
        split_packets(header + b"\x00" * 100)
