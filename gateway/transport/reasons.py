"""MQTT 5 reason codes that mean failure, and their names for error messages."""
from __future__ import annotations

# The reason codes of 0x80 and above that a broker may answer PUBACK, SUBACK or UNSUBACK with
# (MQTT 5, 2.4 and 3.4.2.1, 3.9.3, 3.11.3): the operation failed.
REFUSALS = {
    0x80: "unspecified error",
    0x83: "implementation specific error",
    0x87: "not authorized",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x97: "quota exceeded",
    0x99: "payload format invalid",
    0x9E: "shared subscriptions not supported",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}
FIRST_REFUSAL = 0x80


def reason_name(code: int) -> str:
    """A reason code as the specification names it, with its number: 'not authorized (0x87)'."""
    return f"{REFUSALS.get(code, 'unknown reason')} ({code:#04x})"
