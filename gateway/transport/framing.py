"""MQTT's framing: a byte stream cut into packets by their remaining length (MQTT 5, 2.1.4 and 1.5.5)."""
from __future__ import annotations

MAX_REMAINING_LENGTH = 268_435_455  # four bytes of variable byte integer (1.5.5)
# The largest packet we accept, announced in CONNECT as our Maximum Packet Size (3.1.2.11.4): a broker
# must not send a larger one (it drops the message instead), so a length above it is never buffered.
MAXIMUM_INBOUND_PACKET = 1024 * 1024


class MalformedPacket(ValueError):
    """Bytes from the broker that are not MQTT 5: the connection cannot go on."""


def variable_byte_integer(value: int) -> bytes:
    """MQTT's length encoding: seven bits a byte, low bits first, the high bit set when more follow."""
    encoded = bytearray()
    while True:
        value, digit = value >> 7, value & 0x7F
        encoded.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(encoded)


def read_variable_byte_integer(buffer: bytes, index: int) -> tuple[int | None, int]:
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


def split_packets(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete packets at the start of `buffer`, as (first byte, rest of the packet after
    the length), and the bytes of an incomplete packet that follow them."""
    packets, position, end = [], 0, len(buffer)
    while position + 1 < end:
        length, index = buffer[position + 1], position + 2
        if length >= 0x80:  # more than one length byte; a small message needs no call here
            read, index = read_variable_byte_integer(buffer, position + 1)
            if read is None:
                break
            length = read
        if index + length - position > MAXIMUM_INBOUND_PACKET:
            raise MalformedPacket(f"a packet of {index + length - position} bytes, above the maximum packet size "
                                  f"we announced ({MAXIMUM_INBOUND_PACKET})")
        if index + length > end:
            break
        packets.append((buffer[position], buffer[index:index + length]))
        position = index + length
    return packets, buffer[position:]
