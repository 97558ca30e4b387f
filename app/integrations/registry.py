"""The API clients of every connection: one long-lived httpx client per upstream, shared by all.

GHL credentials come from the connection (``ghl_credentials``: a Private Integration token or OAuth
tokens, refreshed by ``GhlTokens``); a connection with none stored uses ``GHL_PRIVATE_TOKEN``. Rankr
client credentials come from the settings. The rate-limit headers each client sees are kept here,
per connection, for the worker to persist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.connections.models import Connection
from app.errors import PermanentUpstreamError
from app.integrations.ghl.client import GhlClient, TokenSource, Unauthorized, static_token
from app.integrations.ghl.oauth import GhlOAuthClient
from app.integrations.ghl.tokens import GhlTokens
from app.integrations.rankr.client import RankrClient
from app.kit.clock import Clock
from app.kit.http import RateLimitSnapshot, build_http_client
from app.ops import metrics


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
        sessions: async_sessionmaker[AsyncSession] | None = None,
        *,
        holder: str = "registry",
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._ghl_http = build_http_client(settings.http_timeout_seconds)
        self._rankr_http = build_http_client(settings.http_timeout_seconds)
        self._clients: dict[int, Upstreams] = {}
        self.budgets: dict[tuple[int, str], RateLimitSnapshot] = {}
        self.tokens = (
            GhlTokens(sessions, settings, self.ghl_oauth, clock, holder) if sessions is not None else None
        )

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
        source: TokenSource
        on_unauthorized: Unauthorized | None
        if tokens is not None:
            connection_id, location_id = connection.id, connection.ghl_location_id

            async def token() -> str:
                return await tokens.token(connection_id, location_id)

            async def unauthorized(rejected: str) -> str | None:
                return await tokens.rejected(connection_id, location_id, rejected)

            source, on_unauthorized = token, unauthorized
        elif settings.ghl_token is not None:
            source, on_unauthorized = static_token(settings.ghl_token), None
        else:
            raise PermanentUpstreamError("sync", "GHL_PRIVATE_TOKEN is not configured")

        def observe(upstream: str) -> Callable[[RateLimitSnapshot], None]:
            def record(snapshot: RateLimitSnapshot) -> None:
                self.budgets[(connection.id, upstream)] = snapshot
                metrics.budget_seen(upstream, connection.id, snapshot.remaining)

            return record

        ghl = GhlClient(
            self._ghl_http,
            base_url=settings.ghl_base_url,
            version=settings.ghl_api_version,
            location_id=connection.ghl_location_id,
            token=source,
            on_unauthorized=on_unauthorized,
            clock=self._clock,
            on_rate_limit=observe("ghl"),
        )
        rankr = RankrClient(
            self._rankr_http,
            base_url=settings.rankr_base_url,
            client_id=credentials[0],
            client_secret=credentials[1],
            clock=self._clock,
            on_rate_limit=observe("rankr"),
        )
        return Upstreams(ghl=ghl, rankr=rankr)

    @property
    def connection_ids(self) -> list[int]:
        return list(self._clients)

    def rankr_token_expiry(self, connection_id: int) -> datetime | None:
        clients = self._clients.get(connection_id)
        return clients.rankr.token_expires_at if clients else None

    async def aclose(self) -> None:
        await self._ghl_http.aclose()
        await self._rankr_http.aclose()
