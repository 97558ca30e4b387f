"""The API clients of every connection: one long-lived httpx client per upstream, shared by all.

Credentials come from the settings (a GHL Private Integration token and Rankr client credentials);
the rate-limit headers each client sees are kept here, per connection, for the worker to persist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from app.config import Settings
from app.connections.models import Connection
from app.errors import PermanentUpstreamError
from app.integrations.ghl.client import GhlClient, static_token
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
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._ghl_http = build_http_client(settings.http_timeout_seconds)
        self._rankr_http = build_http_client(settings.http_timeout_seconds)
        self._clients: dict[int, Upstreams] = {}
        self.budgets: dict[tuple[int, str], RateLimitSnapshot] = {}

    def for_connection(self, connection: Connection) -> Upstreams:
        clients = self._clients.get(connection.id)
        if clients is None:
            clients = self._build(connection)
            self._clients[connection.id] = clients
        return clients

    def _build(self, connection: Connection) -> Upstreams:
        settings = self._settings
        token = settings.ghl_token
        credentials = settings.rankr_credentials
        if token is None or credentials is None:
            raise PermanentUpstreamError(
                "sync", "GHL_PRIVATE_TOKEN or Rankr client credentials are not configured"
            )

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
            token=static_token(token),
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
