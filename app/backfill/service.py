"""Entry points of backfill and reconciliation: pick the connections, run, and the periodic loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.backfill.backfill import Backfill
from app.backfill.reconcile import Reconciliation
from app.config import Settings
from app.connections import repository as connections
from app.connections.models import Connection, ConnectionStatus
from app.db_problems import database_streak
from app.errors import JobBusy
from app.integrations.registry import Upstreams
from app.kit.clock import Clock
from app.kit.streak import FailureStreak

log = logging.getLogger(__name__)


class UnknownConnection(LookupError):
    """No active connection has this id."""


async def targets(sessions: async_sessionmaker[AsyncSession], connection_id: int | None) -> list[Connection]:
    """The active connections to work on: the one named, or all of them."""
    async with sessions() as session:
        rows = [c for c in await connections.all_connections(session) if c.status == ConnectionStatus.ACTIVE]
    if connection_id is None:
        return rows
    chosen = [c for c in rows if c.id == connection_id]
    if not chosen:
        raise UnknownConnection(f"no active connection {connection_id}")
    return chosen


class ReconcileLoop:
    """Reconciles every active connection every ``RECONCILE_INTERVAL_SECONDS``.

    Every worker process may run the loop; the job lease of each connection lets one of them at a
    time do the work, and a process that finds it taken skips that connection until the next round.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        upstreams: Callable[[Connection], Upstreams],
        *,
        clock: Clock,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        """``on_queued``: wakes the workers once a reconciliation queued events (see ``SyncRun``)."""
        self._sessions = sessions
        self._settings = settings
        self._upstreams = upstreams
        self._clock = clock
        self._on_queued = on_queued
        self._stop = asyncio.Event()
        # A failure that comes back every round is logged when it starts and when it ends.
        self._listing = database_streak(log, "reconcile.connections", settings.database_url)
        self._runs: dict[int, FailureStreak] = {}

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        interval = self._settings.reconcile_interval_seconds
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)
            if self._stop.is_set():
                return
            await self.run_once()

    async def run_once(self) -> dict[int, dict[str, Any]]:
        results: dict[int, dict[str, Any]] = {}
        try:
            chosen = await targets(self._sessions, None)
        except Exception as exc:
            self._listing.failed(exc)
            return results
        self._listing.succeeded()
        for connection in chosen:
            streak = self._runs.get(connection.id)
            if streak is None:
                streak = database_streak(log, "reconcile.run", self._settings.database_url)
                self._runs[connection.id] = streak
            run = Reconciliation(
                self._sessions, self._settings, self._upstreams, clock=self._clock, on_queued=self._on_queued
            )
            try:
                results[connection.id] = await run.run(connection)
                streak.succeeded()
                log.info("reconcile.done", extra={"connection": connection.id, **_flat(run.counts)})
            except JobBusy as exc:
                log.info("reconcile.busy", extra={"connection": connection.id, "reason": str(exc)})
            except Exception as exc:
                # The next round tries again (from the checkpoint); webhook work goes on meanwhile.
                streak.failed(exc, connection=connection.id)
        return results


def _flat(counts: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in counts.items() if isinstance(value, int | str)}


__all__ = ["Backfill", "JobBusy", "ReconcileLoop", "Reconciliation", "UnknownConnection", "targets"]
