"""The FastAPI application: ``create_app(settings)`` wires the database, clients, worker and sandboxes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app import replay
from app.admin import AdminGate
from app.admin import router as admin_router
from app.automation.config import sync_config
from app.backfill import routes as backfill_routes
from app.backfill.service import ReconcileLoop
from app.config import Settings
from app.connections import repository as connections
from app.connections.verify import Verifier, unconfigured_hint
from app.console.routes import install_console
from app.db import create_engine, dispose, is_postgres, session_factory, unit_of_work
from app.db_problems import FATAL_AT_START, DatabaseNotUsable
from app.health import head_revision, schema_problem
from app.health import router as health_router
from app.inbox.intake import MAX_BODY_BYTES, IntakeContext
from app.inbox.notify import Notifier
from app.inbox.writer import open_writer
from app.integrations.ghl import install
from app.integrations.ghl.endpoints import router as ghl_router
from app.integrations.rankr.endpoints import router as rankr_router
from app.integrations.registry import UpstreamRegistry
from app.kit.clock import Clock, utcnow
from app.kit.guards import BodyLimit, SecurityHeaders
from app.kit.loop import cancel_and_wait, started
from app.ops import contacts, history, openapi
from app.ops.scrape import router as metrics_router
from app.ops.status_page import router as status_page_router
from app.problems import install_problem_handlers
from app.sandbox import Sandbox, SandboxConfig
from app.settings_store import service as settings_store
from app.worker import Worker, worker_name

log = logging.getLogger(__name__)

OPERATOR_BODY_BYTES = 256 * 1024
START_RECHECK_SECONDS = (2.0, 10.0, 60.0)


async def seed_connection(app: FastAPI, settings: Settings, clock: Clock) -> None:
    """Create the single connection the settings describe (or the sandbox's), if there is one."""
    seed = settings.connection_seed
    if seed is None:
        return
    try:
        async with unit_of_work(app.state.sessions) as session:
            connection = await connections.ensure(
                session, seed.rankr_account_id, seed.ghl_location_id, clock()
            )
        log.info("connections.ready", extra={"connection": connection.id})
    except ValueError as exc:
        log.error("connections.seed_conflict", extra={"error": str(exc)})


async def verify_at_start(app: FastAPI, settings: Settings) -> None:
    """Check every active connection against the real APIs, in the background of start-up.

    Readiness does not wait for it: a slow or down upstream must not keep webhooks out. The outcome
    is stored and shown on /status; a start-up without any connection says how to add one.
    """
    verifier: Verifier = app.state.verifier
    try:
        outcomes = await verifier(active_only=True)
        if not outcomes:
            log.warning("connections.none", extra={"hint": unconfigured_hint(settings)})
        # An upstream that did not answer (or this server, in sandbox mode, not listening yet) is
        # asked again a little later, so a blip at start-up does not leave a connection unverified.
        for delay in START_RECHECK_SECONDS:
            unsure = [o.connection_id for o in outcomes if o.problem is not None and not o.problem.conclusive]
            if not unsure:
                return
            await asyncio.sleep(delay)
            outcomes = [outcome for connection_id in unsure for outcome in await verifier(connection_id)]
    except Exception as exc:  # the service runs on; /status shows the connections as not verified
        log.warning("connections.verify_failed", extra={"reason": type(exc).__name__})


def sandbox_config(settings: Settings, clock: Clock = utcnow) -> SandboxConfig:
    return SandboxConfig(webhook_target=settings.public_base_url, clock=clock)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = utcnow,
    upstream_transport: Callable[[FastAPI], httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The service. ``upstream_transport`` (tests) carries the requests it makes without the network:
    its upstream API calls and, in sandbox mode, the sandboxes' webhooks to it."""
    settings = settings or Settings()
    sync_config(settings)  # a wrong configuration file refuses the start, naming its line and field
    sandbox = Sandbox(sandbox_config(settings, clock)) if settings.sandbox_mode else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        revision = head_revision()
        problem = await schema_problem(sessions, revision)
        if problem is not None and problem.kind in FATAL_AT_START:
            # Nothing would work: refuse to start (``serve`` checks this first and exits 2 with it).
            await dispose(engine)
            raise DatabaseNotUsable(problem)
        writer = await open_writer(settings.database_url)
        name = worker_name()
        transport = upstream_transport(app) if upstream_transport is not None else None
        registry = UpstreamRegistry(settings, clock, engine, holder=name, transport=transport)
        if problem is None:
            await settings_store.refresh(sessions, settings)  # before any engine reads the configuration
        worker: Worker | None = None
        if settings.run_worker_in_process:
            # The intake below wakes it directly.
            worker = Worker.with_engine(sessions, settings, registry, clock=clock, name=name, listen=False)
        # Workers in other processes learn of stored events by NOTIFY (SQLite has just this process).
        notifier = Notifier(settings.database_url) if is_postgres(settings.database_url) else None

        def stored() -> None:
            """An event was stored (by the intake or a replay): wake the workers."""
            if worker is not None:
                worker.wake()
            if notifier is not None:
                notifier.poke()

        app.state.clock = clock
        app.state.sessions = sessions
        app.state.registry = registry
        app.state.verifier = Verifier(sessions, registry, settings, clock)
        app.state.head_revision = revision
        app.state.worker = worker
        app.state.intake = IntakeContext(
            writer=writer,
            clock=clock,
            on_stored=stored,
            rankr_secrets=settings.rankr_secrets,
            ghl_verifier=settings.ghl_verifier,
        )
        verify_task = None
        if problem is None:
            await seed_connection(app, settings, clock)
            verify_task = asyncio.create_task(verify_at_start(app, settings), name="verify")
        else:
            # Said once here; /readyz answers 503 with it and the worker waits without a word.
            log.warning("db.not_ready", extra={"reason": str(problem)})
            if worker is not None:
                worker.database_problem_reported(str(problem))
        app.state.start_verification = verify_task
        if sandbox is not None:
            await sandbox.start(transport)
        worker_task = asyncio.create_task(worker.run(), name="worker") if worker else None
        reconcile_task = None
        if worker is not None and settings.reconcile_interval_seconds > 0:
            reconciler = ReconcileLoop(
                sessions, settings, registry.for_connection, clock=clock, on_queued=stored
            )
            reconcile_task = asyncio.create_task(reconciler.run(), name="reconcile")
        # Everything built so far lives as long as the process: keep it out of the collector's scans,
        # which otherwise show up as latency spikes on the intake.
        started()
        try:
            yield
        finally:
            # A reconciliation or backfill cut short here resumes from its checkpoint next time.
            await cancel_and_wait(verify_task, reconcile_task, *getattr(app.state, "sync_runs", ()))
            if worker is not None and worker_task is not None:
                worker.stop()
                await worker_task
            if sandbox is not None:
                await sandbox.stop()
            await registry.aclose()
            if notifier is not None:
                await notifier.close()
            await writer.close()
            await engine.dispose()

    # /docs and /redoc load Swagger UI and ReDoc from copies served here, not from a CDN, so they
    # work where the service has no internet access.
    app = FastAPIOffline(
        title="rankr-ghl-sync",
        summary="Keeps contacts in sync between Rankr and GoHighLevel, driven by signed webhooks.",
        lifespan=lifespan,
        static_url=openapi.DOCS_ASSETS_URL,
    )
    # Before the lifespan, as the request guards read it too.
    app.state.settings = settings
    install_problem_handlers(app)
    openapi.install(app)
    # Webhooks and the sandboxes' APIs take bodies up to 1 MiB; the operator routes need far less.
    app.add_middleware(
        BodyLimit,
        limit=OPERATOR_BODY_BYTES,
        prefix_limits={"/webhooks/": MAX_BODY_BYTES, "/sandbox/": MAX_BODY_BYTES},
    )
    app.add_middleware(AdminGate)
    app.add_middleware(SecurityHeaders)
    # The webhook routes are the hot path, so they go on the app's own router: FastAPI keeps an
    # included router as a nested one and matches each request against it twice.
    for router in (rankr_router, ghl_router):
        app.router.routes.extend(router.routes)
    app.include_router(install.router)
    app.include_router(health_router)
    app.include_router(status_page_router)
    app.include_router(metrics_router)
    for admin in (
        admin_router,
        install.admin_routes,
        replay.router,
        backfill_routes.router,
        contacts.router,
        history.router,
    ):
        app.include_router(admin)
    install_console(app)
    if sandbox is not None:
        app.state.sandbox = sandbox
        app.mount("/sandbox", sandbox.app)
    return app
