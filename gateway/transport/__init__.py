"""The only place that imports an MQTT client library. Everything else sees these types."""
from .base import ClientConfig, Delivery, Message, Transport, TransportStats
from .memory import MemoryBroker, MemoryTransport
from .mqtt import MqttTransport

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
