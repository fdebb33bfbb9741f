"""Moves readings stored in the layout before 0.3 to the current one (docs/sink.md, "Migrating readings").

Before, a `reading.v1` event was an `events` point (its data as a JSON string) plus one `readings`
point per measurement (tags `metric`, `unit`; field `value`). Now it is one `readings` point
(gateway/sink/schema.py). The old `events` points hold each reading event whole, so each is read
back, encoded as the sink encodes it now and written; then the old points are dropped. Writing is
idempotent (the same event maps to the same point), so a migration cut short can simply run again.

    python -m gateway.sink.migration        # with CHOREO_INFLUX_* of an account that may drop series
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from ..errors import ChoreoError
from ..events import decode_event
from ..history import rows_to_events
from ..settings import load_settings
from .influx_v1 import InfluxV1
from .schema import EVENTS, READINGS, event_lines

PAGE = 5000
OLD_READINGS = (f'SELECT * FROM "{EVENTS}" WHERE "type" = \'reading.v1\' AND time >= {{after}} '
                f"ORDER BY time LIMIT {PAGE}")
DROP_OLD = (f'DROP SERIES FROM "{READINGS}" WHERE "metric" != \'\'',  # the per-measurement points
            f'DROP SERIES FROM "{EVENTS}" WHERE "type" = \'reading.v1\'')


@dataclass
class Migrated:
    events: int = 0
    kept_as_events: int = 0  # readings whose measurement names cannot be fields: stored in `events` as before


def migrate(database: InfluxV1) -> Migrated:
    """Rewrite every old reading event in the current layout, then drop the old points."""
    done, after, previous = Migrated(), 0, set[str]()
    while True:
        series = database.query(OLD_READINGS.format(after=after))
        events = [event for event in rows_to_events(series) if event["id"] not in previous]
        if not events:
            break
        lines = [line for event in events for line in event_lines(decode_event(json.dumps(event).encode()))]
        database.write(lines)
        done.events += len(events)
        done.kept_as_events += sum(line.startswith(EVENTS + ",") for line in lines)
        # the next page starts at this one's last time; the points of this page are skipped there
        after = max(values[0] for one in series for values in one["values"])  # "time" is the first column
        previous = {event["id"] for event in events}
    if not done.kept_as_events:  # else the reading events stored as events would go too
        for statement in DROP_OLD:
            database.query(statement)
    return done


def main() -> int:
    try:
        settings = load_settings()
        done = migrate(InfluxV1(settings.influx))
    except ChoreoError as exc:
        print(f"migration: {exc.message}", file=sys.stderr)
        return 1
    print(f"migration: {done.events} reading events rewritten as one point each in {READINGS}"
          + (f"; {done.kept_as_events} kept in {EVENTS} (their measurement names cannot be fields), so the old "
             f"points were not dropped: drop them with {DROP_OLD[0]!r}" if done.kept_as_events else
             "; the old points are dropped"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
