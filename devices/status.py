"""The fleet's live status: one updating line on a terminal, a periodic line in a log, a summary at exit."""
from __future__ import annotations

from typing import TextIO

LOG_EVERY = 10.0  # seconds between status lines when not on a terminal


class FleetStatus:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._last = (0.0, 0)  # (elapsed, published) at the previous update
        self._last_logged = 0.0

    def update(self, snapshot: dict, elapsed: float) -> None:
        then, published_then = self._last
        rate = (snapshot["published"] - published_then) / max(elapsed - then, 1e-9)
        self._last = (elapsed, snapshot["published"])
        line = self.line(snapshot, rate)
        if self.live:
            self.stream.write(f"\r{line}\033[K")
            self.stream.flush()
        elif elapsed - self._last_logged >= LOG_EVERY:
            self._last_logged = elapsed
            print(line, file=self.stream, flush=True)

    @staticmethod
    def line(snapshot: dict, rate: float) -> str:
        faults = " ".join(f"{name} {count}" for name, count in sorted(snapshot["faults"].items()))
        return (f"devices {snapshot['connected']}/{snapshot['devices']} connected | {rate:,.0f} msg/s | "
                f"sent {snapshot['published']:,} | errors {snapshot['errors']} | reconnects {snapshot['reconnects']}"
                + (f" | faults: {faults}" if faults else ""))

    def summary(self, snapshot: dict, elapsed: float) -> None:
        if self.live:
            self.stream.write("\n")
        rate = snapshot["published"] / max(elapsed, 1e-9)
        print(f"fleet summary: {snapshot['devices']} devices, {snapshot['published']:,} messages in {elapsed:.1f}s "
              f"({rate:,.0f} msg/s), {snapshot['actuations']} actuations, {snapshot['errors']} errors, "
              f"{snapshot['reconnects']} reconnects, faults {snapshot['faults'] or 'none'}",
              file=self.stream, flush=True)
