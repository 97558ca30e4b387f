"""The API clients of every connection: one long-lived httpx client per upstream, shared by all.

GHL credentials come from the connection (``ghl_credentials``: a Private Integration token or OAuth
tokens, refreshed by ``GhlTokens``); a connection with none stored uses ``GHL_PRIVATE_TOKEN``. Rankr
client credentials come from the settings. Each connection's clients are paced by its shared budgets
with GHL and Rankr (``app.kit.pacing``); the rate-limit headers each client sees are kept here, per
connection, for the worker to persist, and the pacers tell the worker which connections' events to
leave unclaimed for now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.connections import budget
from app.connections.models import Connection
from app.db import session_factory
from app.errors import PermanentUpstreamError
from app.integrations.ghl.client import GhlClient
from app.integrations.ghl.oauth import GhlOAuthClient
from app.integrations.ghl.tokens import GhlTokens
from app.integrations.rankr.client import RankrClient
from app.kit.clock import Clock
from app.kit.http import RateLimitSnapshot, build_http_client
from app.kit.pacing import Pacer
from app.ops import metrics

# A connection whose next request could not start within this many seconds gets no new events
# claimed for it meanwhile: its backlog waits in the database and other connections' events go first.
CLAIM_HORIZON_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class ClaimRoom:
    """What the next claim may take of each account, by the budget its events write through: at most
    ``most[account]`` events (0: none for now); and when (Unix seconds) the first account with none
    gets room again."""

    most: dict[str, int]
    free_at: float | None


def claim_room(budgets: Iterable[tuple[str, Pacer]], now: float) -> ClaimRoom:
    """Of the accounts, each with the pacer its events write through, how many events a claim may take:
    as many as the budget could start within ``CLAIM_HORIZON_SECONDS`` of ``now``.

    More would only wait in hand for their slots while other accounts' events could run; so a claim
    spreads over as many accounts as their budgets need, rather than filling up with a few.
    """
    most: dict[str, int] = {}
    soonest: float | None = None
    for account, pacer in budgets:
        ahead = max(0.0, pacer.busy_until() - now)
        room = 0
        if ahead > CLAIM_HORIZON_SECONDS:
            free_at = now + ahead - CLAIM_HORIZON_SECONDS
            soonest = free_at if soonest is None else min(soonest, free_at)
        else:
            room = int((CLAIM_HORIZON_SECONDS - ahead) / pacer.interval) + 1
        most[account] = min(most.get(account, room), room)
    return ClaimRoom(most, soonest)


@dataclass(frozen=True, slots=True)
class Upstreams:
    """The API clients of one connection."""

    ghl: GhlClient
    rankr: RankrClient


class UpstreamRegistry:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        engine: AsyncEngine,
        *,
        holder: str = "registry",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``transport``: where both upstreams' requests go instead of the network (tests)."""
        self._settings = settings
        self._clock = clock
        self._engine = engine
        self._ghl_http = build_http_client(settings.http_timeout_seconds, transport)
        self._rankr_http = build_http_client(settings.http_timeout_seconds, transport)
        self._clients: dict[int, Upstreams] = {}
        self._pacers: dict[int, tuple[tuple[str, str], list[Pacer]]] = {}
        self.budgets: dict[tuple[int, str], RateLimitSnapshot] = {}
        self.tokens = GhlTokens(session_factory(engine), settings, self.ghl_oauth, clock, holder)

    def ghl_oauth(self) -> GhlOAuthClient:
        """The marketplace app's token client (install flow and refreshes)."""
        client = self._settings.ghl_oauth_client
        if client is None:
            raise PermanentUpstreamError("ghl", "GHL_CLIENT_ID / GHL_CLIENT_SECRET are not configured")
        return GhlOAuthClient(
            self._ghl_http,
            base_url=self._settings.ghl_base_url,
            client_id=client[0],
            client_secret=client[1],
            redirect_uri=self._settings.ghl_oauth_redirect_uri,
            version=self._settings.ghl_api_version,
            clock=self._clock,
        )

    def for_connection(self, connection: Connection) -> Upstreams:
        clients = self._clients.get(connection.id)
        if clients is None:
            clients = self._build(connection)
            self._clients[connection.id] = clients
        return clients

    def _build(self, connection: Connection) -> Upstreams:
        settings = self._settings
        credentials = settings.rankr_credentials
        if credentials is None:
            raise PermanentUpstreamError("sync", "Rankr client credentials are not configured")
        tokens = self.tokens
        connection_id, location_id = connection.id, connection.ghl_location_id

        async def token() -> str:
            return await tokens.token(connection_id, location_id)

        async def unauthorized(rejected: str) -> str | None:
            return await tokens.rejected(connection_id, location_id, rejected)

        def observe(upstream: str) -> Callable[[RateLimitSnapshot], None]:
            def record(snapshot: RateLimitSnapshot) -> None:
                self.budgets[(connection.id, upstream)] = snapshot
                metrics.budget_seen(upstream, connection.id, snapshot.remaining)

            return record

        pacers = {
            upstream: budget.pacer(self._engine, settings, self._clock, connection.id, upstream)
            for upstream in ("ghl", "rankr")
        }
        # Whose events write to each upstream: Rankr's account's to GHL, GHL's location's to Rankr.
        writers = (connection.rankr_account_id, connection.ghl_location_id)
        self._pacers[connection.id] = (writers, [pacers["ghl"], pacers["rankr"]])
        ghl = GhlClient(
            self._ghl_http,
            base_url=settings.ghl_base_url,
            version=settings.ghl_api_version,
            location_id=connection.ghl_location_id,
            token=token,
            on_unauthorized=unauthorized,
            clock=self._clock,
            on_rate_limit=observe("ghl"),
            pacer=pacers["ghl"],
        )
        rankr = RankrClient(
            self._rankr_http,
            base_url=settings.rankr_base_url,
            client_id=credentials[0],
            client_secret=credentials[1],
            clock=self._clock,
            on_rate_limit=observe("rankr"),
            pacer=pacers["rankr"],
        )
        return Upstreams(ghl=ghl, rankr=rankr)

    def claim_room(self) -> ClaimRoom:
        """How many events of each account the next claim may take, and when that next grows.

        A connection's budget with one upstream limits the events that write to that upstream:
        those of the other side's account (a Rankr change is written to GHL, a GHL change to Rankr).
        While it could not start a request soon, none are claimed: the events in hand already use
        the slots there are, and events claimed now would only wait (or be put back) while other
        events could run: the same connection's echoes and its writes to the other upstream, other
        connections'.
        """
        budgets = [
            (account, pacer)
            for writers, pacers in self._pacers.values()
            for account, pacer in zip(writers, pacers, strict=True)
        ]
        return claim_room(budgets, self._clock().timestamp())

    def forget(self, connection_id: int) -> None:
        """Drop a removed connection's clients, pacers and budgets seen, so nothing is written for it."""
        self._clients.pop(connection_id, None)
        self._pacers.pop(connection_id, None)
        for key in [key for key in self.budgets if key[0] == connection_id]:
            del self.budgets[key]

    @property
    def connection_ids(self) -> list[int]:
        return list(self._clients)

    def rankr_token_expiry(self, connection_id: int) -> datetime | None:
        clients = self._clients.get(connection_id)
        return clients.rankr.token_expires_at if clients else None

    async def aclose(self) -> None:
        await self._ghl_http.aclose()
        await self._rankr_http.aclose()
