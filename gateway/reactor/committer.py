"""The reactor's checkpoint commit, off the event loop.

SQLite's commit (an fsync) takes milliseconds; on the event loop it stalls every delivery,
PUBACK and timer meanwhile. Here each checkpoint's changes are committed in a thread of
their own, one transaction at a time and in order, while the loop goes on handling the
next deliveries; a checkpoint's deliveries are acknowledged, on the loop, only once the
transaction holding their effects has committed. A failed commit is raised at the next
checkpoint or at the stop, and nothing after it is committed or acknowledged.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from ..state import Changes, StateStore
from ..transport import Delivery


class Committer:
    def __init__(self, store: StateStore, name: str) -> None:
        self.store = store
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"{name}-checkpoint")
        self._in_flight: asyncio.Future[None] | None = None

    async def submit(self, changes: Changes, deliveries: list[Delivery]) -> None:
        """Wait for the commit before this one (raising its error), then start this one."""
        await self.settle()
        if changes or deliveries:
            self._in_flight = asyncio.ensure_future(self._commit(changes, deliveries))

    async def _commit(self, changes: Changes, deliveries: list[Delivery]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self.store.commit, changes)
        for delivery in deliveries:
            delivery.ack()

    async def settle(self) -> None:
        """Until the commit in flight, if any, is done; raises its error."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            await in_flight

    def close(self) -> None:
        self._thread.shutdown(wait=True)
