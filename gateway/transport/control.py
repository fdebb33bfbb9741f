"""The MQTT 5 packets that run a connection rather than carry messages: CONNECT and CONNACK (MQTT 5,
3.1 and 3.2), SUBSCRIBE and SUBACK (3.8, 3.9), PINGREQ (3.12) and DISCONNECT (3.14)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import ClientConfig
from .framing import MAXIMUM_INBOUND_PACKET, MalformedPacket, variable_byte_integer
from .properties import (
    MAXIMUM_PACKET_SIZE,
    REASON_STRING,
    RECEIVE_MAXIMUM,
    SERVER_KEEP_ALIVE,
    SESSION_EXPIRY,
    TWO_BYTES,
    encode_properties,
    encode_string,
    read_properties,
)

CONNECT = 0x10
CONNACK = 0x20
SUBSCRIBE = 0x82  # the reserved flags of SUBSCRIBE are 0b0010 (3.8.1)
SUBACK = 0x90
PINGRESP = 0xD0
DISCONNECT = 0xE0
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_NORMALLY = b"\xe0\x00"  # remaining length 0: reason "normal disconnection", the will is dropped
PROTOCOL = b"\x00\x04MQTT\x05"  # protocol name and version 5 (3.1.2.1, 3.1.2.2)
RECEIVE_MAXIMUM_DEFAULT = 65535  # what a CONNACK without a Receive Maximum means (3.2.2.3.3)


@dataclass(frozen=True, slots=True)
class Connack:
    """The broker's answer to CONNECT, with the limits this client must respect."""

    session_present: bool
    reason_code: int
    receive_maximum: int = RECEIVE_MAXIMUM_DEFAULT
    keepalive: int | None = None  # the broker's Server Keep Alive, which replaces ours (3.2.2.3.14)
    maximum_packet_size: int | None = None
    reason: str = ""

    @property
    def accepted(self) -> bool:
        """Only 0x00 accepts a connection (MQTT 5, 3.2.2.2); a broker that speaks only MQTT 3.1.1
        answers a version 5 CONNECT with its return code 1, which is below MQTT 5's 0x80 (3.1.1, 3.2.2.3)."""
        return self.reason_code == 0


def connect_packet(config: ClientConfig) -> bytes:
    """CONNECT with the session, flow-control limits, will and credentials of `config`."""
    flags = 0x02 if config.clean_start else 0
    payload = encode_string(config.client_id)
    if config.will is not None:
        flags |= 0x04 | config.will.qos << 3 | (0x20 if config.will.retain else 0)
        payload += (encode_properties(user=config.will.user_properties) + encode_string(config.will.topic)
                    + encode_string(config.will.payload))
    if config.username is not None:
        flags |= 0x80
        payload += encode_string(config.username)
    if config.password is not None:
        flags |= 0x40
        payload += encode_string(config.password)
    properties = encode_properties(two_byte={RECEIVE_MAXIMUM: config.receive_maximum},
                                   four_byte={SESSION_EXPIRY: config.session_expiry,
                                              MAXIMUM_PACKET_SIZE: MAXIMUM_INBOUND_PACKET})
    body = PROTOCOL + bytes((flags,)) + TWO_BYTES.pack(config.keepalive) + properties + payload
    return bytes((CONNECT,)) + variable_byte_integer(len(body)) + body


def parse_connack(body: bytes) -> Connack:
    if len(body) < 2:
        raise MalformedPacket("a CONNACK shorter than its flags and reason code")
    session_present, reason_code = bool(body[0] & 1), body[1]
    if len(body) == 2:
        return Connack(session_present, reason_code)
    properties, _, _ = read_properties(body, 2)
    return Connack(session_present, reason_code,
                   receive_maximum=int(properties.get(RECEIVE_MAXIMUM, RECEIVE_MAXIMUM_DEFAULT)),  # type: ignore[call-overload]
                   keepalive=properties.get(SERVER_KEEP_ALIVE),  # type: ignore[arg-type]
                   maximum_packet_size=properties.get(MAXIMUM_PACKET_SIZE),  # type: ignore[arg-type]
                   reason=str(properties.get(REASON_STRING, "")))


def subscribe_packet(mid: int, topic_filter: str, qos: int, retain_handling: int) -> bytes:
    """SUBSCRIBE to one filter; retain handling 1 sends retained messages only to a new subscription."""
    options = qos | retain_handling << 4
    body = TWO_BYTES.pack(mid) + b"\x00" + encode_string(topic_filter) + bytes((options,))
    return bytes((SUBSCRIBE,)) + variable_byte_integer(len(body)) + body


def parse_suback(body: bytes) -> tuple[int, tuple[int, ...]]:
    """A SUBACK's packet id and its reason codes, one per filter of the SUBSCRIBE."""
    if len(body) < 3:
        raise MalformedPacket("a SUBACK shorter than its packet id and properties")
    _, _, position = read_properties(body, 2)
    return TWO_BYTES.unpack_from(body)[0], tuple(body[position:])


def parse_disconnect(body: bytes) -> tuple[int, str]:
    """The reason code of the broker's DISCONNECT (none: normal) and its reason string, if any."""
    if len(body) < 2:
        return (body[0] if body else 0), ""
    properties, _, _ = read_properties(body, 1)
    return body[0], str(properties.get(REASON_STRING, ""))
