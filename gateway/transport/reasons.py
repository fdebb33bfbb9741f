"""MQTT 5 reason codes that mean failure, and their names for error messages."""
from __future__ import annotations

# The reason codes of 0x80 and above that a broker may answer CONNACK, PUBACK or SUBACK with, or
# close a connection with in DISCONNECT (MQTT 5, 2.4 and 3.2.2.2, 3.4.2.1, 3.9.3, 3.14.2.1): it failed.
REFUSALS = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x92: "packet identifier not found",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}
FIRST_REFUSAL = 0x80


def reason_name(code: int) -> str:
    """A reason code as the specification names it, with its number: 'not authorized (0x87)'."""
    return f"{REFUSALS.get(code, 'unknown reason')} ({code:#04x})"
