"""GHL access tokens per connection, refreshed so that no location can be locked out.

GHL spends a refresh token when it is used and returns a new one, so two workers refreshing the same
connection at once would leave one of them (and then every worker) with a dead refresh token. Here:

- A token is refreshed shortly before it expires (``GHL_TOKEN_REFRESH_MARGIN_SECONDS``) and once
  after GHL answers 401 to it (``rejected``).
- Only one refresh per credential runs at a time across all processes: the refresher first takes a
  lease on the credential's row (a conditional UPDATE committed on its own), re-reads the row, and
  refreshes only if no one did meanwhile. Everyone else polls the row until its ``generation``
  changes and then uses the new token.
- The new tokens are committed before the new access token is used (and before the lease ends).
- ``invalid_grant`` marks the credential ``needs_reauth`` (only if it was not rotated meanwhile) and
  raises ``NeedsReauth``: the worker puts the event back without counting an attempt, so events wait
  for a new install instead of failing.
- A refresh whose answer was lost (timeout, 5xx after GHL rotated) cannot be recovered: GHL already
  spent the old refresh token and the new one never arrived. The lease is released and the error is
  retried later; the next refresh with the old token then answers ``invalid_grant`` and the
  connection shows ``needs_reauth``. (If the answer was lost before GHL acted, that retry succeeds.)
  Location tokens minted from an agency token recover by themselves: they are minted again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.connections import credentials
from app.connections.models import CredentialKind, CredentialState, GhlCredential
from app.db import unit_of_work
from app.errors import Deferred, PermanentUpstreamError, TransientUpstreamError
from app.integrations.ghl.oauth import GhlOAuthClient, InvalidGrant, TokenAnswer
from app.kit.clock import Clock
from app.kit.crypto import TokenCipher

log = logging.getLogger(__name__)

LEASE_POLL_SECONDS = 0.1


class NeedsReauth(Deferred):
    """The connection's GHL grant is gone (invalid_grant): its events wait for a new install."""


@dataclass(frozen=True, slots=True)
class _CachedToken:
    credential_id: int | None  # None: the Private Integration token from the settings
    kind: str
    access: str
    expires_at: datetime | None
    generation: int


def expiry(now: datetime, answer: TokenAnswer) -> datetime | None:
    return now + timedelta(seconds=answer.expires_in) if answer.expires_in is not None else None


class GhlTokens:
    """Hands out a live GHL access token per connection; one per process, shared by its workers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        oauth: Callable[[], GhlOAuthClient],
        clock: Clock,
        holder: str,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._oauth = oauth
        self._clock = clock
        self._holder = holder
        self._cipher: TokenCipher | None = None
        self._known: dict[int, _CachedToken] = {}
        self._margin = timedelta(seconds=settings.ghl_token_refresh_margin_seconds)
        self._lease = timedelta(seconds=settings.http_timeout_seconds * 2 + 5)
        self._locks: dict[int, asyncio.Lock] = {}

    @property
    def cipher(self) -> TokenCipher:
        if self._cipher is None:
            self._cipher = TokenCipher(self._settings.encryption_keys())
        return self._cipher

    def _fresh(self, expires_at: datetime | None) -> bool:
        return expires_at is None or expires_at - self._clock() > self._margin

    # -- the two calls the GHL client makes --------------------------------------------------------

    async def token(self, connection_id: int, location_id: str) -> str:
        known = self._known.get(connection_id)
        if known is not None and self._fresh(known.expires_at):
            return known.access
        known = await self._load(connection_id)
        if self._fresh(known.expires_at) or known.credential_id is None:
            return known.access
        return await self._refresh(connection_id, location_id, known)

    def forget(self, connection_id: int) -> None:
        """Read the connection's credentials from the database at its next request (they may have
        been replaced by another process, or by an install)."""
        self._known.pop(connection_id, None)

    async def rejected(self, connection_id: int, location_id: str, token: str) -> str | None:
        """GHL answered 401 to ``token``: a newer token to retry with, or None when none can help."""
        known = await self._load(connection_id)
        if known.credential_id is None or known.kind == CredentialKind.PRIVATE:
            return None
        if known.access != token and self._fresh(known.expires_at):
            return known.access  # another worker refreshed meanwhile
        return await self._refresh(connection_id, location_id, known)

    # -- internals ----------------------------------------------------------------------------------

    async def _load(self, connection_id: int) -> _CachedToken:
        async with self._sessions() as session:
            row = await credentials.for_connection(session, connection_id)
            if row is None:
                token = self._settings.ghl_token
                if token is None:
                    raise PermanentUpstreamError("ghl", "no GHL credentials for this connection")
                # Kept like a stored token: a 401 looks again (credentials stored since are found).
                known = _CachedToken(None, CredentialKind.PRIVATE, token, None, 0)
                self._known[connection_id] = known
                return known
            known = self._remember(connection_id, row)
            if credentials.rekey(row, self.cipher):
                await session.commit()
                log.info("ghl.credentials_rekeyed", extra={"connection": connection_id})
        return known

    def _remember(self, connection_id: int, row: GhlCredential) -> _CachedToken:
        if row.state == CredentialState.NEEDS_REAUTH:
            self._known.pop(connection_id, None)
            raise NeedsReauth(
                f"GHL refused the stored grant of connection {connection_id}; install the app again",
                delay=self._settings.needs_reauth_recheck_seconds,
            )
        known = _CachedToken(
            row.id, row.kind, self.cipher.decrypt(row.access_token), row.expires_at, row.generation
        )
        self._known[connection_id] = known
        return known

    async def _refresh(self, connection_id: int, location_id: str, seen: _CachedToken) -> str:
        """One refresh across all processes; the others wait for its result."""
        credential_id = seen.credential_id
        if credential_id is None:
            raise PermanentUpstreamError("ghl", "a Private Integration token cannot be refreshed")
        lock = self._locks.setdefault(credential_id, asyncio.Lock())
        async with lock:  # workers of this process queue here rather than polling the database
            deadline = time.monotonic() + self._lease.total_seconds() * 2
            while True:
                now = self._clock()
                async with unit_of_work(self._sessions) as session:
                    taken = await credentials.take_lease(
                        session, credential_id, self._holder, now, now + self._lease
                    )
                async with self._sessions() as session:
                    row = await credentials.get(session, credential_id)
                if row is None:
                    raise PermanentUpstreamError("ghl", "the connection's GHL credentials were removed")
                if row.generation != seen.generation or row.state == CredentialState.NEEDS_REAUTH:
                    if taken:
                        await self._release(credential_id)
                    return self._remember(connection_id, row).access
                if taken:
                    return await self._rotate(connection_id, location_id, row)
                if time.monotonic() > deadline:
                    raise TransientUpstreamError("ghl", "another worker holds the token refresh lease")
                await asyncio.sleep(LEASE_POLL_SECONDS)

    async def _release(self, credential_id: int) -> None:
        async with unit_of_work(self._sessions) as session:
            await credentials.release_lease(session, credential_id, self._holder)

    async def _rotate(self, connection_id: int, location_id: str, row: GhlCredential) -> str:
        """Holding the lease: ask GHL for new tokens, commit them, and only then use them."""
        try:
            answer = await self._ask_ghl(row, location_id)
        except InvalidGrant:
            async with unit_of_work(self._sessions) as session:
                marked = await credentials.mark_needs_reauth(session, row.id, row.generation, self._clock())
            log.error("ghl.token_refresh_refused", extra={"connection": connection_id, "marked": marked})
            await self._release(row.id)
            async with self._sessions() as session:
                current = await credentials.get(session, row.id)
            if current is None:
                raise PermanentUpstreamError("ghl", "the connection's GHL credentials were removed") from None
            return self._remember(connection_id, current).access
        except BaseException:
            await self._release(row.id)
            raise
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            await credentials.store_rotation(
                session,
                self.cipher,
                row.id,
                access_token=answer.access_token,
                refresh_token=answer.refresh_token,
                expires_at=expiry(now, answer),
                now=now,
            )
        log.info("ghl.token_refreshed", extra={"connection": connection_id, "kind": row.kind})
        self._known[connection_id] = _CachedToken(
            row.id, row.kind, answer.access_token, expiry(now, answer), row.generation + 1
        )
        return answer.access_token

    async def _ask_ghl(self, row: GhlCredential, location_id: str) -> TokenAnswer:
        oauth = self._oauth()
        if row.kind == CredentialKind.AGENCY_LOCATION:
            company = row.company_id or ""
            agency = await self.agency_token(company)
            try:
                return await oauth.location_token(agency, company, location_id)
            except PermanentUpstreamError as exc:
                if exc.status != 401:
                    raise
            # GHL refused the agency token (expired early, or revoked): refresh it once and retry.
            agency = await self.agency_token(company, rejected=agency)
            return await oauth.location_token(agency, company, location_id)
        if row.refresh_token is None:
            raise PermanentUpstreamError("ghl", "the stored GHL credentials have no refresh token")
        user_type = "Company" if row.kind == CredentialKind.AGENCY else "Location"
        return await oauth.refresh(self.cipher.decrypt(row.refresh_token), user_type)

    async def agency_token(self, company_id: str, rejected: str | None = None) -> str:
        """A live access token of the agency (refreshed under the agency row's own lease)."""
        async with self._sessions() as session:
            row = await credentials.agency(session, company_id)
        if row is None:
            raise PermanentUpstreamError("ghl", f"no agency credentials for company {company_id}")
        if row.state == CredentialState.NEEDS_REAUTH:
            raise NeedsReauth(
                f"GHL refused the agency grant of company {company_id}; install the app again",
                delay=self._settings.needs_reauth_recheck_seconds,
            )
        current = self.cipher.decrypt(row.access_token)
        if self._fresh(row.expires_at) and current != rejected:
            return current
        # The agency row is keyed by a negative id in the cache so it never collides with connections.
        seen = _CachedToken(row.id, row.kind, "", row.expires_at, row.generation)
        return await self._refresh(-row.id, "", seen)
