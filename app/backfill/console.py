"""``rankr-ghl-sync backfill`` and ``reconcile`` in a terminal: a progress bar, then the counts.

The command runs its own worker next to the run (unless it is a dry run), so it finishes on its
own even when no other worker runs; a service's workers take a share of the events meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from app.backfill.backfill import Backfill
from app.backfill.reconcile import Reconciliation
from app.backfill.run import SyncRun
from app.backfill.service import UnknownConnection, targets
from app.config import Settings
from app.db import create_engine, session_factory
from app.errors import JobBusy
from app.integrations.registry import UpstreamRegistry
from app.kit.clock import utcnow
from app.sync.engine import SyncEngine
from app.worker import Worker

STEPS = {
    "rankr": ("Rankr contacts listed", "rankrListed"),
    "ghl": ("GHL contacts listed", "ghlListed"),
    "decided": ("records decided", "decided"),
    "applied": ("writes applied", "applied"),
    "surveyed": ("contacts' tasks and notes", "contactsSurveyed"),
}


class Bar:
    """One rich progress bar per step, fed by the run's progress callback."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, _phase: str, counts: dict[str, Any]) -> None:
        listed = int(counts.get("rankrListed", 0)) + int(counts.get("ghlListed", 0))
        totals = {
            "decided": listed or None,
            "applied": counts.get("queued") or None,
            "surveyed": counts.get("contactsToSurvey") or None,
        }
        for step, (label, key) in STEPS.items():
            if key not in counts:
                continue
            if step not in self._tasks:
                self._tasks[step] = self.progress.add_task(label, total=None)
            self.progress.update(self._tasks[step], completed=int(counts[key]), total=totals.get(step))


async def run_command(
    settings: Settings,
    job: str,
    connection_id: int | None,
    dry_run: bool,
    *,
    count_tasks_and_notes: bool = True,
) -> int:
    console = Console()
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    registry = UpstreamRegistry(settings, utcnow, engine)
    worker = None
    if not dry_run:
        worker = Worker(
            sessions,
            SyncEngine(sessions, settings, registry.for_connection, clock=utcnow),
            settings,
            registry,
        )
    worker_task = asyncio.create_task(worker.run()) if worker else None
    wake = worker.wake if worker else None
    try:
        chosen = await targets(sessions, connection_id)
        if not chosen:
            typer.echo("no active connection", err=True)
            return 1
        for connection in chosen:
            bar = Bar(console)
            run: SyncRun
            if job == "backfill":
                report = (lambda line: console.print(line, markup=False)) if dry_run else None
                run = Backfill(
                    sessions, settings, registry.for_connection, clock=utcnow, progress=bar,
                    on_queued=wake, dry_run=dry_run, report=report,
                    count_tasks_and_notes=count_tasks_and_notes,
                )  # fmt: skip
            else:
                run = Reconciliation(
                    sessions, settings, registry.for_connection, clock=utcnow, progress=bar, on_queued=wake
                )
            console.print(
                f"{job}{' (dry run)' if dry_run else ''} of connection {connection.id}: {connection.name}"
            )
            with bar.progress:
                counts = await run.run(connection)
            console.print(json.dumps(counts, indent=2, sort_keys=True), markup=False)
        return 0
    except (JobBusy, UnknownConnection) as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
    finally:
        if worker is not None and worker_task is not None:
            worker.stop()
            await worker_task
        await registry.aclose()
        await engine.dispose()
