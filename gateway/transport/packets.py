"""PUBLISH (MQTT 5, 3.3) and PUBACK (3.4), nearly all the traffic: encoded and decoded here, with
a fast path for the common case of no properties."""
from __future__ import annotations

import struct

from .base import Message
from .framing import MAX_REMAINING_LENGTH, MalformedPacket, variable_byte_integer
from .properties import TWO_BYTES, encode_properties, read_properties, utf8_string

PUBLISH = 0x30
PUBACK = 0x40
PACKET_TYPE = 0xF0
DUP = 0x08  # first-byte flag of a PUBLISH sent again (MQTT 5, 3.3.1.1)
PUBACK_SUCCESS = struct.Struct("!BBH")  # remaining length 2: reason "success" (3.4.2.1)
NO_PROPERTIES = b"\x00"
MAX_TOPIC_BYTES = 65535


def publish_packet(message: Message, mid: int | None) -> bytes:
    """A PUBLISH with the message's user properties; `mid` is None for QoS 0."""
    topic = message.topic.encode()
    if len(topic) > MAX_TOPIC_BYTES:
        raise ValueError(f"topic of {len(topic)} bytes exceeds MQTT's {MAX_TOPIC_BYTES}")
    properties = encode_properties(user=message.user_properties) if message.user_properties else NO_PROPERTIES
    header = TWO_BYTES.pack(len(topic)) + topic + (b"" if mid is None else TWO_BYTES.pack(mid)) + properties
    length = len(header) + len(message.payload)
    if length > MAX_REMAINING_LENGTH:
        raise ValueError(f"payload of {len(message.payload)} bytes exceeds MQTT's packet limit")
    flags = (2 if mid is not None else 0) | message.retain
    return bytes((PUBLISH | flags,)) + variable_byte_integer(length) + header + message.payload


def resent(packet: bytes) -> bytes:
    """The same PUBLISH with its DUP flag set, as it must go out again after a reconnect."""
    return bytes((packet[0] | DUP,)) + packet[1:]


def puback_packet(mid: int) -> bytes:
    return PUBACK_SUCCESS.pack(PUBACK, 2, mid)


def parse_publish(first_byte: int, body: bytes) -> tuple[Message, int | None]:
    """The message of a PUBLISH and its packet id (None at QoS 0)."""
    qos = first_byte >> 1 & 3
    if qos == 3:
        raise MalformedPacket("a PUBLISH with QoS 3 (MQTT 5, 3.3.1.2)")
    topic_end = 2 + TWO_BYTES.unpack_from(body)[0] if len(body) >= 2 else 0
    position, mid = topic_end, None
    if qos:
        if position + 2 > len(body):
            raise MalformedPacket("a PUBLISH shorter than its packet id")
        mid = TWO_BYTES.unpack_from(body, position)[0]
        position += 2
    if topic_end <= 2 or position >= len(body):
        # an empty topic would be a topic alias, which this client never allows (3.3.2.3.4)
        raise MalformedPacket("a PUBLISH without a topic, or shorter than its header says")
    topic = utf8_string(body[2:topic_end], "a PUBLISH topic")
    if body[position] == 0:  # no properties: the common case, without parsing any
        return Message(topic, body[position + 1:], qos, bool(first_byte & 1)), mid
    _, user_properties, position = read_properties(body, position)
    return Message(topic, body[position:], qos, bool(first_byte & 1), user_properties), mid


def parse_puback(body: bytes) -> tuple[int, int]:
    """A PUBACK's packet id and reason code; a remaining length of 2 means success (3.4.2.1)."""
    if len(body) < 2:
        raise MalformedPacket("a PUBACK without a packet id")
    return TWO_BYTES.unpack_from(body)[0], body[2] if len(body) > 2 else 0
