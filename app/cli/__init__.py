"""The ``rankr-ghl-sync`` command: serve, worker, migrate, sandbox, status and the rest (see --help)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import traceback
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn

from app.cli.automation import config_cli, rules_cli
from app.cli.connections import connections_cli
from app.cli.settings import load_settings
from app.config import Settings
from app.db import MAX_INTEGER_KEY
from app.kit.loop import cancel_and_wait
from app.kit.loop import run as run_async

if TYPE_CHECKING:
    from app.db_problems import DatabaseProblem

cli = typer.Typer(
    name="rankr-ghl-sync",
    help="Keeps contacts in sync between Rankr and GoHighLevel, driven by signed webhooks.",
    no_args_is_help=True,
    add_completion=False,
)


cli.add_typer(connections_cli, name="connections")
cli.add_typer(config_cli, name="config")
cli.add_typer(rules_cli, name="rules")


def _configure_logging(settings: Settings) -> None:
    from app.kit.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)


def _local_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104 - only printed
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _banner(settings: Settings, base: str, derived: bool) -> str:
    public = settings.public_base_url
    note = "   (derived: set PUBLIC_URL for GHL to reach it)" if derived and not settings.sandbox_mode else ""
    lines = [
        "",
        "rankr-ghl-sync is starting",
        f"  setup console      {base}/admin/          (sign in with ADMIN_TOKEN)",
        f"  status page        {base}/status          (JSON; HTML in a browser)",
        f"  health             {base}/healthz  {base}/readyz",
        f"  API docs           {base}/docs",
        f"  Rankr webhook URL  {public}/webhooks/rankr{note}",
        f"  GHL webhook URL    {public}/webhooks/ghl{note}",
        f"  OAuth redirect     {settings.ghl_oauth_redirect_uri}{'' if settings.ghl_redirect_uri else note}",
        f"  database           {settings.database_url.split('@')[-1]}",
        "  what to register where: rankr-ghl-sync urls",
    ]
    if settings.sandbox_mode:
        lines += [
            "  sandbox mode: both APIs are emulated in this process",
            f"    GHL sandbox UI   {base}/sandbox/ghl/ui",
            f"    Rankr sandbox UI {base}/sandbox/rankr/ui",
            "    create or edit a contact on one side and watch it appear on the other.",
        ]
    return "\n".join(lines) + "\n"


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """The HTTP API; runs the worker in-process when RUN_WORKER_IN_PROCESS is true."""
    from app.main import create_app
    from app.registration import public_url_warnings

    settings = load_settings()
    local = _local_url(host, port)
    # Without PUBLIC_URL outside sandbox mode, the derived URLs only serve a local trial: say so, and
    # still start.
    for warning in public_url_warnings(settings, fallback=local):
        typer.echo(f"warning: {warning}", err=True)
    derived = settings.public_url is None
    if derived:
        settings = load_settings(public_url=local)
    _configure_logging(settings)
    _stop_if_database_unusable(settings, allow_unmigrated=True)
    typer.echo(_banner(settings, local, derived))
    from app.kit.guards import LimitedHttpTools

    uvicorn.run(
        create_app(settings), host=host, port=port, log_config=None, access_log=False, http=LimitedHttpTools
    )


@cli.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="events processed at once")] = None,
) -> None:
    """Claims and processes events until stopped; SIGTERM finishes the current events first."""
    settings = load_settings()
    if concurrency is not None:
        settings = load_settings(worker_concurrency=concurrency)
    _configure_logging(settings)
    _stop_if_database_unusable(settings, allow_unmigrated=True)
    run_async(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from app.db import create_engine, session_factory
    from app.integrations.registry import UpstreamRegistry
    from app.kit.clock import utcnow
    from app.worker import Worker, worker_name

    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    name = worker_name()
    registry = UpstreamRegistry(settings, utcnow, engine, holder=name)
    runner = Worker.with_engine(sessions, settings, registry, name=name)
    from app.backfill.service import ReconcileLoop

    reconciler = ReconcileLoop(
        sessions, settings, registry.for_connection, clock=utcnow, on_queued=runner.wake
    )
    loop = asyncio.get_running_loop()

    def stop() -> None:
        runner.stop()
        reconciler.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        # This process's counters (events processed, upstream requests); the backlog is on the API's.
        try:
            start_http_server(settings.metrics_port)
        except OSError as exc:  # a port taken must not stop the work: say so and go on without
            logging.getLogger("app.worker").error(
                "worker.metrics_port_unavailable", extra={"port": settings.metrics_port, "error": str(exc)}
            )
    periodic = settings.reconcile_interval_seconds > 0
    reconcile_task = asyncio.create_task(reconciler.run()) if periodic else None
    try:
        await runner.run()
    finally:
        await cancel_and_wait(reconcile_task)
        await registry.aclose()
        await engine.dispose()


@cli.command()
def migrate() -> None:
    """Alembic upgrade head on DATABASE_URL."""
    from alembic import command

    from app.health import alembic_config

    settings = load_settings()
    _stop_if_database_unusable(settings, allow_unmigrated=True)
    command.upgrade(alembic_config(settings.database_url), "head")
    typer.echo("database is at the newest migration")


@cli.command()
def sandbox(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8100,
) -> None:
    """The GHL and Rankr sandboxes on their own port (webhooks go to PUBLIC_URL)."""
    from app.main import sandbox_config
    from app.sandbox import create_standalone_app

    settings = load_settings()
    _configure_logging(settings)
    base = _local_url(host, port)
    typer.echo(
        f"GHL sandbox API    {base}/sandbox/ghl   (UI: {base}/sandbox/ghl/ui)\n"
        f"Rankr sandbox API  {base}/sandbox/rankr (UI: {base}/sandbox/rankr/ui)\n"
        f"webhooks go to     {settings.public_base_url}/webhooks/..."
    )
    uvicorn.run(create_standalone_app(sandbox_config(settings)), host=host, port=port, log_config=None)


@cli.command()
def urls(
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON document")] = False,
) -> None:
    """What to register where: webhook URLs and events in GHL and Rankr, the OAuth redirect, scopes."""
    from app.registration import as_text, registration

    sheet = registration(load_settings())
    if as_json:
        typer.echo(json.dumps(sheet, indent=2))
        return
    for warning in sheet["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(as_text(sheet))


@cli.command()
def backfill(
    connection: Annotated[
        int | None, typer.Option(help="only this connection id (default: all)", min=1, max=MAX_INTEGER_KEY)
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print what would be done; write nothing")
    ] = False,
    contacts_only: Annotated[
        bool,
        typer.Option(
            "--contacts-only",
            help="dry run: leave out counting tasks and notes (it reads four lists per contact)",
        ),
    ] = False,
) -> None:
    """First sync of existing contacts: link the same people on both sides, merge, create the rest."""
    from app.backfill.console import run_command

    settings = load_settings()
    _configure_logging(settings)
    _stop_if_database_unusable(settings)
    run = run_command(settings, "backfill", connection, dry_run, count_tasks_and_notes=not contacts_only)
    raise typer.Exit(run_async(run))


@cli.command()
def reconcile(
    connection: Annotated[
        int | None, typer.Option(help="only this connection id (default: all)", min=1, max=MAX_INTEGER_KEY)
    ] = None,
) -> None:
    """Repair what webhooks missed: changes since the last run, and deletions that sent none."""
    from app.backfill.console import run_command

    settings = load_settings()
    _configure_logging(settings)
    _stop_if_database_unusable(settings)
    raise typer.Exit(run_async(run_command(settings, "reconcile", connection, False)))


@cli.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON document")] = False,
) -> None:
    """The same facts as GET /status, readable in a terminal."""
    settings = load_settings()
    facts = run_async(_collect(settings))
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    typer.echo(f"overall: {facts['status']}   ({facts['generatedAt']})\n  {facts['message']}")
    for problem in facts["problems"]:
        typer.echo(f"  ! connection {problem['connectionId']} ({problem['name']}): {problem['reason']}")
    for entry in facts["connections"]:
        events = entry["events"]
        typer.echo(
            f"\nconnection {entry['id']}  {entry['name']}  [{entry['state']}]  "
            f"{entry['health']['level'].upper()} {'; '.join(entry['health']['reasons'])}\n"
            f"  verification    {verification_line(entry['verification'])}\n"
            f"  events   pending {events['pending']}  processing {events['processing']}  "
            f"retrying {events['retrying']}  dead {events['dead']}  done {events['done']}  "
            f"skipped {events['skipped']}\n"
            f"  oldest pending  {entry['oldestPendingAgeSeconds'] or '-'} s\n"
            f"  last sync       to GHL {entry['lastSyncToGhlAt'] or '-'}   "
            f"to Rankr {entry['lastSyncToRankrAt'] or '-'}\n"
            f"  linked          {entry['linked']['contacts']} contacts, {entry['linked']['tasks']} tasks, "
            f"{entry['linked']['notes']} notes"
        )
        for job in ("backfill", "reconcile"):
            if entry.get(job):
                run = entry[job]
                counts = ", ".join(f"{k} {v}" for k, v in run["counts"].items() if isinstance(v, int))
                typer.echo(f"  {job:<16}{run['state']} ({run['phase']})  {counts}")
        for upstream, budget in entry["rateBudget"].items():
            typer.echo(f"  {upstream + ' budget':<16}{budget['remaining']} of {budget['limit']} left")
        for error in entry.get("latestErrors", []):
            typer.echo(f"  ! {error['status']} {error['type']} {error['eventId']}: {error['error']}")
    installs = facts["installs"]
    if installs["refusedCallbacks"]:
        latest = installs["latestRefusal"]
        typer.echo(
            f"\nGHL install callbacks refused: {installs['refusedCallbacks']} "
            f"(latest {latest['at']}: {latest['reason']})"
        )
    unrouted = facts["unrouted"]
    if unrouted["accounts"]:
        typer.echo(f"\nevents for {unrouted['accounts']} unknown account(s): {unrouted['events']}")


@cli.command()
def contact(
    contact_id: Annotated[str, typer.Argument(help="the Rankr or the GHL contact id")],
    with_appointments: Annotated[
        bool, typer.Option("--appointments", help="also read the contact's GHL appointments")
    ] = False,
) -> None:
    """A contact's sync state: its link, its tasks and notes, and (read from GHL) its appointments."""
    settings = load_settings()
    found = run_async(_contact(settings, contact_id, with_appointments))
    if found is None:
        typer.echo(f"no contact with id {contact_id} is known to the service", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(found, indent=2))


async def _contact(settings: Settings, contact_id: str, with_appointments: bool) -> dict[str, Any] | None:
    from app.db import opened
    from app.integrations.registry import UpstreamRegistry
    from app.kit.clock import utcnow
    from app.sync import views

    async with opened(settings.database_url) as (engine, sessions):
        state = await views.contact_state(sessions, contact_id)
        if state is None or not with_appointments:
            return state
        registry = UpstreamRegistry(settings, utcnow, engine)
        try:
            found = await views.appointments(sessions, registry.for_connection, contact_id)
        finally:
            await registry.aclose()
        state["appointments"] = (found or {}).get("appointments", [])
        return state


@cli.command()
def history(
    contact_id: Annotated[str, typer.Argument(help="a Rankr or a GHL contact id")],
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON document")] = False,
) -> None:
    """Every change the service made for a contact, its tasks and notes, in both systems (values masked)."""
    settings = load_settings()
    found = run_async(_history(settings, contact_id))
    if found is None:
        typer.echo(f"no audit entries for contact {contact_id}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    typer.echo(f"contact {' = '.join(found['ids'])}: {len(found['entries'])} change(s), oldest first")
    for entry in found["entries"]:
        event = entry["event"]
        trigger = f"{event['type'] or '?'} {event['ref'] or event['id'] or ''}".strip()
        record = f"{entry['kind']} rankr {entry['rankrId'] or '-'} / ghl {entry['ghlId'] or '-'}"
        typer.echo(f"\n{entry['at']}  {entry['direction']} {entry['action']} [{entry['result']}]  {record}")
        typer.echo(f"  event    {trigger}")
        for name, change in entry["changes"].items():
            if isinstance(change, dict) and "to" in change:
                typer.echo(f"  {name:<12} {change.get('from')!r} -> {change.get('to')!r}")
            else:
                typer.echo(f"  {name:<12} {change!r}")
        if entry["detail"]:
            typer.echo(f"  detail   {entry['detail']}")
    if found["truncated"]:
        typer.echo("\n(older entries left out; use --json with the admin API for the newest only)")


async def _history(settings: Settings, contact_id: str) -> dict[str, Any] | None:
    from app.db import opened
    from app.ops import audit

    async with opened(settings.database_url) as (_, sessions), sessions() as session:
        return await audit.history(session, contact_id)


@cli.command()
def replay(
    event: Annotated[
        list[str] | None, typer.Option(help="a dead event's id, as /status shows it (repeatable)")
    ] = None,
    connection: Annotated[
        int | None, typer.Option(help="every dead event of this connection", min=1, max=MAX_INTEGER_KEY)
    ] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="every dead event")] = False,
) -> None:
    """Re-run dead events: by event id, by connection, or all of them."""
    from app.replay import Selection

    selection = Selection(events=tuple(event or ()), connection=connection, everything=replay_all)
    problem = selection.problem()
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    settings = load_settings()
    count = run_async(_replay(settings, selection))
    typer.echo(f"{count} dead event(s) put back in the queue")


async def _replay(settings: Settings, selection: Any) -> int:
    from app.db import opened
    from app.kit.clock import utcnow
    from app.replay import UnknownConnection, replay

    async with opened(settings.database_url) as (_, sessions):
        try:
            return await replay(sessions, utcnow, selection)
        except UnknownConnection as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc


def verification_line(verification: dict[str, Any]) -> str:
    from app.connections.verify import Problem, describe

    problem = verification["problem"]
    line = describe(
        verification["verified"],
        Problem(**problem) if problem else None,
        verification["locationName"],
    )
    if verification["state"] == "unchecked":
        line = "not verified yet"
    return line + (f"  (checked {verification['checkedAt']})" if verification["checkedAt"] else "")


async def _collect(settings: Settings) -> dict[str, Any]:
    from app.db import opened
    from app.health import collect_status
    from app.kit.clock import utcnow

    async with opened(settings.database_url) as (_, sessions):
        return await collect_status(sessions, utcnow, settings, detailed=True)


def _database_problem_line(problem: DatabaseProblem) -> str:
    return f"error: {problem.cause}\n  fix: {problem.fix}"


def _stop_if_database_unusable(settings: Settings, *, allow_unmigrated: bool = False) -> None:
    """Before a command that would start work: exit 2 with the cause and the fix when the database
    cannot be used. ``allow_unmigrated``: a database that lacks its schema (or is busy for a moment)
    is left to the command (``migrate`` builds it; ``serve`` and ``worker`` say so once and wait)."""
    from app.db_problems import FATAL_AT_START

    problem = run_async(_database_at_start(settings))
    if problem is not None and (problem.kind in FATAL_AT_START or not allow_unmigrated):
        typer.echo(_database_problem_line(problem), err=True)
        raise typer.Exit(2)


async def _database_at_start(settings: Settings) -> DatabaseProblem | None:
    from app.db import opened
    from app.health import head_revision, schema_problem

    async with opened(settings.database_url) as (_, sessions):
        return await schema_problem(sessions, head_revision())


def _settings_or_none() -> Settings | None:
    try:
        return Settings()
    except Exception:  # the command itself reports a bad setting
        return None


def main() -> None:
    try:
        cli(prog_name="rankr-ghl-sync")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        from app.db_problems import database_problem

        settings = _settings_or_none()
        problem = database_problem(exc, settings.database_url if settings else None)
        if problem is None:
            raise
        if settings is not None and settings.log_level == "DEBUG":
            traceback.print_exception(exc)
        typer.echo(_database_problem_line(problem), err=True)
        sys.exit(2)
