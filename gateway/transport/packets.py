"""The MQTT 5 packets of the per-message path, which the transport encodes and decodes itself.

PUBLISH (MQTT 5, 3.3) and PUBACK (3.4) are nearly all the traffic; gmqtt handles every
other packet (CONNECT, SUBSCRIBE, PINGREQ, DISCONNECT ...). Doing these two here saves
gmqtt's general parsing (properties, topic aliases, logging) for every message.
"""
from __future__ import annotations

import struct

from .base import Message

PUBLISH = 0x30
PUBACK = 0x40
PACKET_TYPE = 0xF0
DUP = 0x08  # first-byte flag of a PUBLISH sent again (MQTT 5, 3.3.1.1)
TWO_BYTES = struct.Struct("!H")
PUBACK_SUCCESS = struct.Struct("!BBH")  # remaining length 2: reason "success" (3.4.2.1)
NO_PROPERTIES = b"\x00"
MAX_TOPIC_BYTES = 65535
MAX_REMAINING_LENGTH = 268_435_455  # four bytes of variable byte integer (1.5.5)


class MalformedPacket(ValueError):
    """Bytes from the broker that are not MQTT 5: the connection cannot go on."""


def publish_packet(message: Message, mid: int | None) -> bytes:
    """A PUBLISH without properties; `mid` is None for QoS 0."""
    topic = message.topic.encode()
    if len(topic) > MAX_TOPIC_BYTES:
        raise ValueError(f"topic of {len(topic)} bytes exceeds MQTT's {MAX_TOPIC_BYTES}")
    header = TWO_BYTES.pack(len(topic)) + topic + (b"" if mid is None else TWO_BYTES.pack(mid)) + NO_PROPERTIES
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


def variable_byte_integer(value: int) -> bytes:
    """MQTT's length encoding: seven bits a byte, low bits first, the high bit set when more follow."""
    encoded = bytearray()
    while True:
        value, digit = value >> 7, value & 0x7F
        encoded.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(encoded)


def split_packets(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete packets at the start of `buffer`, as (first byte, rest of the packet after
    the length), and the bytes of an incomplete packet that follow them."""
    packets, position, end = [], 0, len(buffer)
    while position + 1 < end:
        length, index = _read_length(buffer, position + 1)
        if length is None or index + length > end:
            break
        packets.append((buffer[position], buffer[index:index + length]))
        position = index + length
    return packets, buffer[position:]


def _read_length(buffer: bytes, index: int) -> tuple[int | None, int]:
    """The variable byte integer at `index` and the index after it; None if it is not all there."""
    value, shift = 0, 0
    while index < len(buffer):
        byte = buffer[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index
        shift += 7
        if shift > 21:
            raise MalformedPacket("a length of more than four bytes")
    return None, index


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
    properties_length, position = _read_length(body, position)
    if topic_end <= 2 or properties_length is None or position + properties_length > len(body):
        # an empty topic would be a topic alias, which this client never allows (3.3.2.3.4)
        raise MalformedPacket("a PUBLISH without a topic, or shorter than its header says")
    topic = _utf8_string(body[2:topic_end])
    return Message(topic, body[position + properties_length:], qos, bool(first_byte & 1)), mid


def _utf8_string(raw: bytes) -> str:
    """An MQTT string: well-formed UTF-8 without U+0000, or the packet is malformed (1.5.4)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("a PUBLISH whose topic is not valid UTF-8") from None
    if "\0" in text:
        raise MalformedPacket("a PUBLISH whose topic contains U+0000")
    return text


def parse_puback(body: bytes) -> tuple[int, int]:
    """A PUBACK's packet id and reason code; a remaining length of 2 means success (3.4.2.1)."""
    if len(body) < 2:
        raise MalformedPacket("a PUBACK without a packet id")
    return TWO_BYTES.unpack_from(body)[0], body[2] if len(body) > 2 else 0
