"""Running a backfill or reconciliation in process, beside the worker the test drives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from app.backfill.backfill import Backfill
from app.backfill.reconcile import Reconciliation
from app.backfill.run import SyncRun
from app.backfill.service import targets
from tests.support.inprocess import InProcessService

# Each idle round of the worker moves the clock this far on: events wait (a deferred task waits for
# its contact) on the service's clock, which stands still otherwise.
IDLE_STEP_SECONDS = 0.5
ROUNDS = 4000


def backfill(service: InProcessService, **options: Any) -> Backfill:
    state = service.app.state
    return Backfill(
        state.sessions, state.settings, state.registry.for_connection, clock=service.clock, **options
    )


def reconciliation(service: InProcessService) -> Reconciliation:
    state = service.app.state
    return Reconciliation(state.sessions, state.settings, state.registry.for_connection, clock=service.clock)


async def drive(
    service: InProcessService, run: SyncRun, *, until: Callable[[], Any] | None = None, rounds: int = 10_000
) -> dict[str, Any] | None:
    """Run the job with the worker applying what it queues and the sandboxes' webhooks delivered;
    its counts. With ``until`` (an async predicate), the job is interrupted (its task cancelled, as
    a killed process would stop) as soon as it holds, and None is returned; ``rounds``: claims the
    worker makes between two looks at it."""
    [connection] = await targets(service.app.state.sessions, None)
    job = asyncio.create_task(run.run(connection))
    try:
        for _ in range(ROUNDS):
            if job.done():
                counts = job.result()
                await service.settle()
                return counts
            if until is not None and await until():
                return None
            await service.deliver()
            if not await service.worker.run_until_idle(max_rounds=rounds):
                service.clock.advance(IDLE_STEP_SECONDS)
                await asyncio.sleep(0.01)
        raise AssertionError(f"the {run.job} did not finish: {await service.events()}")
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
