"""The one writer interface, two protocols: `v1` (/write) and `v2` (/api/v2/write)."""
from __future__ import annotations

from ..settings import InfluxSettings
from .influx_v1 import InfluxV1
from .influx_v2 import InfluxV2


def writer_for(settings: InfluxSettings) -> InfluxV1 | InfluxV2:
    return InfluxV2(settings) if settings.api == "v2" else InfluxV1(settings)
