"""``rankr-ghl-sync config ...`` and ``rules ...``: check the configuration file, list GHL custom
fields to fill its map, and show what the rules would do for an event (writing nothing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer

from app.kit.loop import run as run_async

if TYPE_CHECKING:
    from app.integrations.ghl.schemas import GhlFieldDefinition

config_cli = typer.Typer(
    help="Check, export and import the sync configuration; list GHL custom fields.", no_args_is_help=True
)
rules_cli = typer.Typer(help="Try the rules of the configuration file on an event.", no_args_is_help=True)

ConfigPath = Annotated[Path, typer.Argument(help="the YAML configuration file", exists=False, dir_okay=False)]


@config_cli.command("check")
def check(path: ConfigPath) -> None:
    """Validate FILE; every problem is printed with its line and field (exit 1 when there is one)."""
    from app.automation.config import ConfigError, load

    try:
        config = load(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"{path}: valid ({len(config.rules)} rules, {len(config.task_templates)} task templates, "
        f"{len(config.mapping.custom_fields)} custom fields, {len(config.mapping.users)} users mapped)"
    )


@config_cli.command("export")
def export(
    output: Annotated[
        Path | None, typer.Argument(help="the YAML file to write (default: standard output)")
    ] = None,
) -> None:
    """Write the configuration in force (the settings saved in the database, or CONFIG_FILE's when it
    is set) as the YAML file CONFIG_FILE and `config import` read."""
    from app.automation.config import to_yaml
    from app.cli.settings import load_settings

    settings = load_settings()
    config, version = run_async(_in_force(settings))
    text = to_yaml(config)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{output}: written ({version})", err=True)


@config_cli.command("import")
def import_file(
    path: ConfigPath,
    by: Annotated[str, typer.Option("--by", help="who makes the change, for the history")] = "cli",
) -> None:
    """Validate FILE exactly as CONFIG_FILE is validated and save it as the newest version of the
    settings kept in the database (the previous one stays in the history)."""
    from app.automation.config import ConfigError, load
    from app.cli.settings import load_settings

    settings = load_settings()
    try:
        config = load(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    version = run_async(_store(settings, config, by))
    if version is None:
        typer.echo(f"{path}: unchanged (the stored settings already hold it)")
    else:
        typer.echo(f"{path}: saved as version {version}")
    if settings.config_file is not None:
        typer.echo(
            f"note: CONFIG_FILE ({settings.config_file}) is set, so the service reads that file; "
            "unset it to use the stored settings",
            err=True,
        )


async def _in_force(settings: Any) -> tuple[Any, str]:
    from app.automation.config import sync_config
    from app.db import autocommit, opened
    from app.settings_store import service as settings_store

    if settings.config_file is not None:
        return sync_config(settings), f"from CONFIG_FILE {settings.config_file}"
    async with opened(settings.database_url) as (_, sessions), autocommit(sessions) as session:
        current = await settings_store.current(session)
        config = await settings_store.current_config(session)
    return config, "no stored settings yet" if current is None else f"version {current.id}"


async def _store(settings: Any, config: Any, by: str) -> int | None:
    from app.db import opened, unit_of_work
    from app.kit.clock import utcnow
    from app.settings_store import service as settings_store

    async with opened(settings.database_url) as (_, sessions), unit_of_work(sessions) as session:
        saved = await settings_store.save(session, config, by, utcnow())
        return None if saved is None else saved.id


@config_cli.command("custom-fields")
def custom_fields(
    connection_id: Annotated[
        int | None, typer.Option("--connection", help="connection id (default: the first)")
    ] = None,
) -> None:
    """List the GHL location's contact custom fields, as 'key: id' lines for mapping.customFields."""
    from app.cli.settings import load_settings

    settings = load_settings()
    fields = run_async(_custom_fields(settings, connection_id))
    for field in fields:
        typer.echo(f"{field.key}: {field.id}    # {field.name} ({field.data_type})")


async def _custom_fields(settings: Any, connection_id: int | None) -> list[GhlFieldDefinition]:
    from app.connections import repository as connections
    from app.db import opened
    from app.integrations.registry import UpstreamRegistry
    from app.kit.clock import utcnow

    async with opened(settings.database_url) as (engine, sessions):
        async with sessions() as session:
            found = await connections.all_connections(session)
        chosen = [c for c in found if connection_id is None or c.id == connection_id]
        if not chosen:
            typer.echo("no such connection", err=True)
            raise typer.Exit(1)
        registry = UpstreamRegistry(settings, utcnow, engine)
        try:
            return await registry.for_connection(chosen[0]).ghl.list_custom_fields()
        finally:
            await registry.aclose()


@rules_cli.command("test")
def try_rules(
    event_file: Annotated[Path, typer.Argument(help="a webhook body of Rankr or GHL (JSON)")],
    config_file: Annotated[
        Path | None, typer.Option("--config", help="the configuration file (default: CONFIG_FILE)")
    ] = None,
) -> None:
    """Show what the rules would do for the event in EVENT_FILE; nothing is written anywhere."""
    from pydantic import ValidationError

    from app.automation.config import ConfigError, field_maps, load
    from app.automation.runner import dry_run
    from app.cli.settings import load_settings
    from app.kit.clock import utcnow

    settings = load_settings()
    try:
        config = load(config_file) if config_file is not None else run_async(_in_force(settings))[0]
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    try:
        text = event_file.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        typer.echo(
            f"{event_file}: cannot be read ({reason}); expected a webhook body of Rankr or GHL", err=True
        )
        raise typer.Exit(2) from exc
    try:
        event = json.loads(text)
    except ValueError as exc:
        typer.echo(f"{event_file}: not JSON ({exc}); expected a webhook body of Rankr or GHL", err=True)
        raise typer.Exit(2) from exc
    problem = webhook_problem(event)
    if problem is not None:
        typer.echo(f"{event_file}: {problem}", err=True)
        raise typer.Exit(2)
    maps = field_maps(settings, config)
    try:
        result = run_async(dry_run(config, event, maps, utcnow()))
    except ValidationError as exc:
        error = exc.errors()[0]
        # Rankr's contact is the event's data; GHL's is the body itself.
        loc = ("data", *error["loc"]) if "accountId" in event else error["loc"]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        where = ".".join(str(part) for part in loc)
        typer.echo(
            f"{event_file}: {where}: {error['msg']}{more}; expected a contact as {event['type']} carries it",
            err=True,
        )
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, indent=2))


def known_event_types() -> tuple[frozenset[str], frozenset[str]]:
    """The event types the intake accepts: Rankr's (its webhook schema) and GHL's (its endpoint)."""
    from app.integrations.ghl import endpoints
    from app.integrations.ghl.app_events import APP_EVENTS
    from app.integrations.rankr.schemas import RankrEventType

    rankr = frozenset(name for kind in get_args(RankrEventType) for name in get_args(kind))
    ghl = endpoints.CONTACT_EVENTS | endpoints.CHILD_EVENTS | endpoints.APPOINTMENT_EVENTS | APP_EVENTS
    return rankr, ghl


def webhook_problem(event: Any) -> str | None:
    """What keeps ``event`` (parsed JSON) from being a Rankr or GHL webhook body this service knows."""
    if not isinstance(event, dict):
        return f"JSON {_json_kind(event)}, not an object; expected a webhook body of Rankr or GHL"
    rankr, ghl = known_event_types()
    kind = event.get("type")
    # Rankr's WebhookEvent carries accountId and a data object; GHL's bodies carry the record at the
    # top level with its locationId (or companyId, for app events).
    if "accountId" in event and isinstance(event.get("data"), dict):
        if kind not in rankr:
            return f"unknown Rankr event type {kind!r}; expected one of {', '.join(sorted(rankr))}"
        return None
    if isinstance(kind, str) and ("locationId" in event or "companyId" in event):
        if kind not in ghl:
            return f"unknown GHL event type {kind!r}; expected one of {', '.join(sorted(ghl))}"
        return None
    return (
        "neither a Rankr webhook (type, accountId and a data object) nor a GHL webhook "
        "(type and locationId or companyId)"
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
