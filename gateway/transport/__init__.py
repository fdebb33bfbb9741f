"""The only place that speaks MQTT (with its own codec, no client library). Everything else sees these types."""
from .base import ClientConfig, Delivery, Message, Transport, TransportStats
from .client import MqttTransport
from .memory import MemoryBroker, MemoryTransport

__all__ = [
    "ClientConfig",
    "Delivery",
    "MemoryBroker",
    "MemoryTransport",
    "Message",
    "MqttTransport",
    "Transport",
    "TransportStats",
]
