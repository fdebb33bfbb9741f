"""An InfluxDB error answer as a StoreError: whether a retry can help, and how long to wait first.

Both writers map their HTTP error answers here: v1 (urllib) and v2 (influxdb-client).
"""
from __future__ import annotations

from typing import Protocol

from ..errors import StoreError

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class Headers(Protocol):
    """A header lookup by name, as urllib's and urllib3's header collections both offer."""

    def get(self, name: str, /) -> str | None: ...


def refusal(status: int, detail: str, headers: Headers | None) -> StoreError:
    """The StoreError for an HTTP error answer, carrying its status and the delay its Retry-After asks for."""
    error = StoreError(f"InfluxDB answered {status}: {detail}", retryable=status in RETRYABLE_STATUS)
    error.status = status
    error.retry_after = _delay_seconds(headers.get("Retry-After") if headers else None)
    return error


def _delay_seconds(retry_after: str | None) -> float | None:
    # Retry-After is either delay-seconds or an HTTP date (RFC 9110, 10.2.3); a date is not honoured.
    return float(retry_after) if retry_after and retry_after.isdigit() else None
