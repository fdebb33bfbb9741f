"""InfluxDB 2.x/3.x `/api/v2/write` (token, org, bucket) through the official influxdb-client.

Also any server that speaks that protocol (VictoriaMetrics, which the tests use).
Synchronous writes; the sink runs them in a worker thread and does its own retries.
"""
from __future__ import annotations

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from ..errors import StoreError
from ..settings import InfluxSettings
from .refusal import refusal


class InfluxV2:
    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        token = settings.token.get_secret_value() if settings.token else ""
        self._client = InfluxDBClient(url=settings.url, token=token, org=settings.org or "",
                                      timeout=int(settings.timeout * 1000), retries=False)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: list[str]) -> None:
        try:
            # influxdb-client annotates `write_precision` as WritePrecision, whose values are plain strings
            self._write_api.write(bucket=self.settings.bucket or self.settings.database, org=self.settings.org or "",
                                  record="\n".join(lines), write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except ApiException as exc:
            raise refusal(exc.status, (exc.body or exc.reason or "")[:300], exc.headers) from None
        except (HTTPError, OSError) as exc:
            raise StoreError(f"InfluxDB at {self.settings.url} unreachable: {exc}", retryable=True) from None
