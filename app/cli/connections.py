"""``rankr-ghl-sync connections ...``: list, add, disable, remove connections; re-encrypt stored tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import MAX_INTEGER_KEY
from app.kit.loop import run as run_async

if TYPE_CHECKING:
    from app.integrations.registry import UpstreamRegistry

T = TypeVar("T")

connections_cli = typer.Typer(
    help="List, add, disable and remove connections (one Rankr account <-> one GHL location).",
    no_args_is_help=True,
)


def _settings() -> Settings:
    from app.cli.settings import load_settings

    return load_settings()


def _run(work: Callable[[Settings, async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    from app.db import opened

    settings = _settings()

    async def main() -> T:
        async with opened(settings.database_url) as (_, sessions):
            return await work(settings, sessions)

    return run_async(main())


async def _verified(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    registry: UpstreamRegistry,
    connection_id: int,
) -> str:
    """Verify a connection just added; the line to print under it."""
    from app.connections.verify import verify_all
    from app.kit.clock import utcnow

    [outcome] = await verify_all(sessions, registry, settings, utcnow, connection_id=connection_id)
    return f"  {outcome.line()}"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@connections_cli.command("list")
def list_connections() -> None:
    """Every connection with its state and GHL credential (kind, state, expiry; never the token)."""
    from app.connections import credentials
    from app.connections import repository as connections
    from app.health import token_state
    from app.kit.clock import utcnow

    async def work(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> list[str]:
        async with sessions() as session:
            rows = await connections.all_connections(session)
            creds = {c.connection_id: c for c in await credentials.all_credentials(session)}
        now = utcnow()
        lines = []
        for row in rows:
            cred = creds.get(row.id)
            token: dict[str, Any] = (
                token_state(cred, now, settings.ghl_token_refresh_margin_seconds)
                if cred is not None
                else {"kind": "private (settings)", "state": "ok", "expiresAt": None}
            )
            lines.append(
                f"{row.id:>4}  {row.status:<8}  rankr {row.rankr_account_id}  ghl {row.ghl_location_id}  "
                f"token {token['kind']}/{token['state']}"
                + (f" until {token['expiresAt']}" if token["expiresAt"] else "")
            )
        return lines

    lines = _run(work)
    typer.echo("\n".join(lines) if lines else "no connections")


@connections_cli.command("add")
def add(
    ghl_location: Annotated[str, typer.Option("--ghl-location", help="GHL location (sub-account) id")],
    rankr_account: Annotated[str, typer.Option("--rankr-account", help="Rankr account id")],
    ghl_token: Annotated[
        str | None,
        typer.Option(
            "--ghl-token",
            envvar="GHL_CONNECTION_TOKEN",
            help="a Private Integration token of the location (or set GHL_CONNECTION_TOKEN)",
        ),
    ] = None,
    company: Annotated[
        str | None, typer.Option("--company", help="agency (company) id whose installed app mints the token")
    ] = None,
) -> None:
    """Link a Rankr account to a GHL location.

    With --ghl-token: a Private Integration token, stored encrypted. With --company (or when the
    location's agency installed the app): a location token is minted from the agency's token.
    Otherwise a one-time install link is printed: open it to install the app on the location (OAuth).
    """
    from app.connections import credentials
    from app.connections.models import CredentialKind
    from app.integrations.ghl.install import activate, connect_agency_location, new_install_link
    from app.integrations.registry import UpstreamRegistry
    from app.kit.clock import utcnow

    async def work(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> str:
        registry = UpstreamRegistry(settings, utcnow, sessions.kw["bind"], holder="cli")
        tokens = registry.tokens
        try:
            now = utcnow()
            if ghl_token:
                from app.db import unit_of_work

                async with unit_of_work(sessions) as session:
                    connection = await activate(session, rankr_account, ghl_location, now)
                    await credentials.put(
                        session,
                        tokens.cipher,
                        kind=CredentialKind.PRIVATE,
                        connection_id=connection.id,
                        access_token=ghl_token.strip(),
                        now=now,
                    )
                added = f"connection {connection.id}: Rankr {rankr_account} <-> GHL {ghl_location} (private)"
                return f"{added}\n{await _verified(settings, sessions, registry, connection.id)}"
            async with sessions() as session:
                if company:
                    agency = await credentials.agency(session, company)
                else:
                    found = await credentials.all_credentials(session)
                    agencies = [c for c in found if c.kind == CredentialKind.AGENCY]
                    agency = agencies[0] if len(agencies) == 1 else None
            if agency is not None and agency.company_id:
                agency_token = await tokens.agency_token(agency.company_id)
                connection_id = await connect_agency_location(
                    sessions,
                    registry.ghl_oauth(),
                    agency_token,
                    tokens.cipher,
                    company_id=agency.company_id,
                    location_id=ghl_location,
                    rankr_account_id=rankr_account,
                    now=now,
                )
                return (
                    f"connection {connection_id}: Rankr {rankr_account} <-> GHL {ghl_location} "
                    f"(location token minted from agency {agency.company_id})\n"
                    f"{await _verified(settings, sessions, registry, connection_id)}"
                )
            url = await new_install_link(sessions, settings, rankr_account, now)
            return f"open this one-time link to install the app on the location (OAuth):\n{url}"
        finally:
            await registry.aclose()

    try:
        typer.echo(_run(work))
    except ValueError as exc:
        raise _fail(str(exc)) from exc


@connections_cli.command("install-link")
def install_link(
    rankr_account: Annotated[str, typer.Option("--rankr-account", help="Rankr account id")],
) -> None:
    """Print a one-time link that installs the GHL app on a location and links it to this Rankr account.

    Whoever opens it first starts the install (no admin token needed); it works once, for 7 days.
    """
    from app.integrations.ghl.install import new_install_link
    from app.kit.clock import utcnow

    async def work(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> str:
        return await new_install_link(sessions, settings, rankr_account.strip(), utcnow())

    if not rankr_account.strip() or len(rankr_account) > 255:
        raise _fail("--rankr-account must be a Rankr account id (1 to 255 characters)")
    typer.echo(_run(work))


def _set_status(connection_id: int, remove: bool) -> None:
    from app.connections import repository as connections
    from app.connections.models import ConnectionStatus
    from app.connections.removal import remove_connection
    from app.db import unit_of_work
    from app.kit.clock import utcnow

    async def work(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> bool:
        if remove:
            # The service, if running, is another process: it keeps its clients, writes no budget for it.
            return await remove_connection(sessions, connection_id, None)
        async with unit_of_work(sessions) as session:
            return await connections.set_status(session, connection_id, ConnectionStatus.DISABLED, utcnow())

    if not _run(work):
        raise _fail(f"no connection {connection_id}")
    typer.echo(f"connection {connection_id} {'removed' if remove else 'disabled'}")


@connections_cli.command("disable")
def disable(
    connection_id: Annotated[
        int, typer.Argument(help="connection id (see 'list')", min=1, max=MAX_INTEGER_KEY)
    ],
) -> None:
    """Stop syncing a connection; its events are kept and reported on /status, never applied."""
    _set_status(connection_id, remove=False)


@connections_cli.command("remove")
def remove(
    connection_id: Annotated[
        int, typer.Argument(help="connection id (see 'list')", min=1, max=MAX_INTEGER_KEY)
    ],
) -> None:
    """Delete a connection with its credentials, links and budgets (its events stay, as unrouted)."""
    _set_status(connection_id, remove=True)


@connections_cli.command("verify")
def verify(
    connection_id: Annotated[
        int | None,
        typer.Argument(
            help="connection id (see 'list'); every connection when left out", min=1, max=MAX_INTEGER_KEY
        ),
    ] = None,
) -> None:
    """Check connections against GHL and Rankr now (read-only calls); exit 1 when any is not verified."""
    from app.connections.verify import Verification, verify_all
    from app.integrations.registry import UpstreamRegistry
    from app.kit.clock import utcnow

    async def work(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> list[Verification]:
        registry = UpstreamRegistry(settings, utcnow, sessions.kw["bind"], holder="cli")
        try:
            return await verify_all(sessions, registry, settings, utcnow, connection_id=connection_id)
        finally:
            await registry.aclose()

    outcomes = _run(work)
    if not outcomes and connection_id is not None:
        raise _fail(f"no connection {connection_id}")
    if not outcomes:
        from app.connections.verify import unconfigured_hint

        raise _fail(unconfigured_hint(_settings()))
    for outcome in outcomes:
        typer.echo(f"connection {outcome.connection_id}: {outcome.line()}")
    if not all(outcome.verified for outcome in outcomes):
        raise typer.Exit(1)


@connections_cli.command("rekey")
def rekey() -> None:
    """Re-encrypt every stored token with the newest TOKEN_ENCRYPTION_KEY (the first one listed)."""
    from app.connections import credentials
    from app.connections.models import GhlCredential
    from app.db import unit_of_work
    from app.kit.crypto import TokenCipher

    async def work(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
        cipher = TokenCipher(settings.encryption_keys())
        async with unit_of_work(sessions) as session:
            rows = (await session.execute(select(GhlCredential))).scalars().all()
            changed = sum(1 for row in rows if credentials.rekey(row, cipher))
        return changed, len(rows)

    try:
        changed, total = _run(work)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"re-encrypted {changed} of {total} stored credentials")
