"""``POST /admin/backfill`` and ``POST /admin/reconcile`` (on the admin router: ADMIN_TOKEN required).

A real backfill or reconciliation runs in the background of this process (its writes are applied
by the worker, in-process or not) and answers 202 at once; progress shows on ``/status``. A dry
run answers with its decisions when done. A job already running for a connection answers 409.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.admin import admin_router
from app.backfill import repository as repo
from app.backfill.backfill import Backfill
from app.backfill.job import JobName
from app.backfill.reconcile import Reconciliation
from app.backfill.run import SyncRun, backfill_unfinished
from app.backfill.service import UnknownConnection, targets
from app.connections.models import Connection, ConnectionId
from app.errors import JobBusy, ProblemError

log = logging.getLogger(__name__)
DRY_RUN_LINES = 1000


router = admin_router()


class BackfillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    connection_id: ConnectionId | None = Field(default=None, alias="connectionId")
    dry_run: bool = Field(default=False, alias="dryRun")
    # A dry run reads four task and note lists per contact to count them; false leaves them out.
    tasks_and_notes: bool = Field(default=True, alias="tasksAndNotes")


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    connection_id: ConnectionId | None = Field(default=None, alias="connectionId")


async def _chosen(request: Request, connection_id: int | None, job: str) -> list[Connection]:
    sessions = request.app.state.sessions
    try:
        chosen = await targets(sessions, connection_id)
    except UnknownConnection as exc:
        raise ProblemError(404, "Not Found", str(exc)) from exc
    now = request.app.state.clock()
    async with sessions() as session:
        for connection in chosen:
            # An unfinished backfill is the reason to give first: a reconciliation now running
            # beside it only came before it, and waits for it next round too.
            unfinished = (
                await backfill_unfinished(session, connection.id) if job == JobName.RECONCILE else None
            )
            if unfinished is not None:
                raise ProblemError(409, "Conflict", unfinished)
            row = await repo.get_job(session, connection.id, job)
            if row is not None and row.lease_until is not None and row.lease_until > now:
                raise ProblemError(409, "Conflict", f"a {job} of connection {connection.id} is running")
    return chosen


async def _start(request: Request, run: SyncRun, connection: Connection) -> None:
    try:
        await run.claim(connection)
    except JobBusy as exc:
        raise ProblemError(409, "Conflict", str(exc)) from exc
    tasks: set[asyncio.Task[Any]] = request.app.state.__dict__.setdefault("sync_runs", set())

    async def body() -> None:
        try:
            await run.run(connection)
        except JobBusy:
            log.info("sync_run.busy", extra={"connection": connection.id, "job": run.job})
        except Exception:
            log.exception("sync_run.failed", extra={"connection": connection.id, "job": run.job})

    task = asyncio.create_task(body(), name=f"{run.job}-{connection.id}")
    tasks.add(task)
    task.add_done_callback(tasks.discard)


@router.post("/backfill", summary="Backfill contacts: link the same people, merge, create the rest")
async def backfill(request: Request, body: BackfillRequest | None = None) -> JSONResponse:
    body = body or BackfillRequest()
    state = request.app.state
    job = JobName.DRY_RUN if body.dry_run else JobName.BACKFILL
    chosen = await _chosen(request, body.connection_id, job)
    if body.dry_run:
        lines: list[str] = []
        results = {}
        for connection in chosen:
            run = Backfill(
                state.sessions, state.settings, state.registry.for_connection, clock=state.clock,
                dry_run=True, count_tasks_and_notes=body.tasks_and_notes,
                report=lambda line: lines.append(line) if len(lines) < DRY_RUN_LINES else None,
            )  # fmt: skip
            try:
                results[str(connection.id)] = await run.run(connection)
            except JobBusy as exc:
                raise ProblemError(409, "Conflict", str(exc)) from exc
        return JSONResponse({"dryRun": True, "connections": results, "actions": lines})
    for connection in chosen:
        run = Backfill(
            state.sessions, state.settings, state.registry.for_connection, clock=state.clock,
            on_queued=state.intake.on_stored,
        )  # fmt: skip
        await _start(request, run, connection)
    return JSONResponse({"started": [c.id for c in chosen], "job": JobName.BACKFILL}, status_code=202)


@router.post("/reconcile", summary="Reconcile contacts now: repair drift and deletions webhooks missed")
async def reconcile(request: Request, body: ReconcileRequest | None = None) -> JSONResponse:
    body = body or ReconcileRequest()
    state = request.app.state
    chosen = await _chosen(request, body.connection_id, JobName.RECONCILE)
    for connection in chosen:
        run = Reconciliation(
            state.sessions, state.settings, state.registry.for_connection, clock=state.clock,
            on_queued=state.intake.on_stored,
        )  # fmt: skip
        await _start(request, run, connection)
    return JSONResponse({"started": [c.id for c in chosen], "job": JobName.RECONCILE}, status_code=202)
