"""MQTT 5 properties (MQTT 5, 2.2.2): the typed fields after a packet's variable header.

Properties are read whole, so a packet that carries one this client does not use is still
framed right; only the ones the transport acts on are named here.
"""
from __future__ import annotations

import struct

from .framing import MalformedPacket, read_variable_byte_integer, variable_byte_integer

SESSION_EXPIRY = 0x11
SERVER_KEEP_ALIVE = 0x13
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27

UserProperties = tuple[tuple[str, str], ...]
TWO_BYTES = struct.Struct("!H")
FOUR_BYTES = struct.Struct("!I")

# Each property identifier and the form of its value (MQTT 5, 2.2.2.2).
_BYTE, _TWO, _FOUR, _VARINT, _STRING, _BINARY, _PAIR = range(7)
FORMS = {
    0x01: _BYTE, 0x17: _BYTE, 0x19: _BYTE, 0x24: _BYTE, 0x25: _BYTE, 0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
    0x13: _TWO, 0x21: _TWO, 0x22: _TWO, 0x23: _TWO,
    0x02: _FOUR, 0x11: _FOUR, 0x18: _FOUR, 0x27: _FOUR,
    0x0B: _VARINT,
    0x03: _STRING, 0x08: _STRING, 0x12: _STRING, 0x15: _STRING, 0x1A: _STRING, 0x1C: _STRING, 0x1F: _STRING,
    0x09: _BINARY, 0x16: _BINARY,
    0x26: _PAIR,
}


def read_properties(data: bytes, position: int) -> tuple[dict[int, object], UserProperties, int]:
    """The properties at `position`: single ones by identifier, the user properties in order,
    and the position after them."""
    length, position = read_variable_byte_integer(data, position)
    if length is None or position + length > len(data):
        raise MalformedPacket("properties longer than the packet")
    end = position + length
    single: dict[int, object] = {}
    user: list[tuple[str, str]] = []
    while position < end:
        identifier = data[position]
        form = FORMS.get(identifier)
        if form is None:
            raise MalformedPacket(f"an unknown property identifier {identifier:#04x}")
        value, position = _read_value(data, position + 1, form, end)
        if form == _PAIR:
            user.append(value)  # type: ignore[arg-type]
        else:
            single[identifier] = value
    if position != end:
        raise MalformedPacket("a property longer than the properties")
    return single, tuple(user), end


def _read_value(data: bytes, position: int, form: int, end: int) -> tuple[object, int]:
    if form == _BYTE:
        _need(position + 1, end)
        return data[position], position + 1
    if form == _TWO:
        _need(position + 2, end)
        return TWO_BYTES.unpack_from(data, position)[0], position + 2
    if form == _FOUR:
        _need(position + 4, end)
        return FOUR_BYTES.unpack_from(data, position)[0], position + 4
    if form == _VARINT:
        value, after = read_variable_byte_integer(data, position)
        if value is None:
            raise MalformedPacket("a property cut short")
        return value, after
    if form == _PAIR:
        raw_name, position = _read_binary(data, position, end)
        raw_value, position = _read_binary(data, position, end)
        return (utf8_string(raw_name, "a user property"), utf8_string(raw_value, "a user property")), position
    raw, position = _read_binary(data, position, end)
    return (raw if form == _BINARY else utf8_string(raw, "a string property")), position


def _read_binary(data: bytes, position: int, end: int) -> tuple[bytes, int]:
    _need(position + 2, end)
    length = TWO_BYTES.unpack_from(data, position)[0]
    _need(position + 2 + length, end)
    return data[position + 2:position + 2 + length], position + 2 + length


def _need(position: int, end: int) -> None:
    if position > end:
        raise MalformedPacket("a property cut short")


def utf8_string(raw: bytes, what: str) -> str:
    """An MQTT string: well-formed UTF-8 without U+0000, or the packet is malformed (1.5.4)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket(f"{what} is not valid UTF-8") from None
    if "\0" in text:
        raise MalformedPacket(f"{what} contains U+0000")
    return text


def encode_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > 65535:
        raise ValueError(f"a string of {len(raw)} bytes exceeds MQTT's 65535")
    return TWO_BYTES.pack(len(raw)) + raw


def encode_properties(two_byte: dict[int, int] | None = None, four_byte: dict[int, int] | None = None,
                      user: UserProperties = ()) -> bytes:
    """Properties with their length in front; the transport sends only integers and user properties."""
    encoded = bytearray()
    for identifier, value in (two_byte or {}).items():
        encoded += bytes((identifier,)) + TWO_BYTES.pack(value)
    for identifier, value in (four_byte or {}).items():
        encoded += bytes((identifier,)) + FOUR_BYTES.pack(value)
    for name, text in user:
        encoded += bytes((USER_PROPERTY,)) + encode_string(name) + encode_string(text)
    return variable_byte_integer(len(encoded)) + encoded
