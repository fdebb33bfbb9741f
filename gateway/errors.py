"""One small exception tree. Each error carries the data a log line or a rejected fact needs."""
from __future__ import annotations


class ChoreoError(Exception):
    """Base of every error the project raises on purpose."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        device_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.topic = topic
        self.device_id = device_id
        if retryable is not None:
            self.retryable = retryable


class ConfigError(ChoreoError):
    """A setting is missing or invalid; raised at start, before any connection opens."""


class InvalidInput(ChoreoError):
    """A payload, topic or identifier failed validation. The message is the rejection reason."""


class TransportError(ChoreoError):
    """The broker connection failed or a publish was lost with the session."""

    retryable = True


class Refused(TransportError):
    """The broker answered a publish or subscription with a failure reason code (0x80 or more).

    Waiting does not fix it: the client's declarations and the broker's ACL disagree.
    """

    retryable = False

    def __init__(self, message: str, *, topic: str, reason_code: int) -> None:
        super().__init__(message, topic=topic)
        self.reason_code = reason_code


class StoreError(ChoreoError):
    """InfluxDB refused or could not take a write or a query."""

    status: int | None = None  # the HTTP status, when InfluxDB answered
    retry_after: float | None = None  # seconds, from a Retry-After header
