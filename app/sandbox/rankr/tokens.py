"""Rankr's OAuth 2.0 client-credentials tokens: issued by POST /oauth/token, living ``ttl`` seconds."""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

SCOPES = frozenset(
    {"contacts.read", "contacts.write", "tasks.read", "tasks.write", "notes.read", "notes.write"}
)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A bearer token, the account it acts for, its scopes and when it expires (monotonic seconds)."""

    value: str
    account_id: str
    scopes: frozenset[str]
    expires_at: float


class InvalidScope(ValueError):
    """A requested scope the API does not define."""


class TokenIssuer:
    """Checks client credentials and remembers the tokens it issued until they expire."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        account_id: str,
        ttl_seconds: float,
        monotonic: Callable[[], float],
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._account_id = account_id
        self.ttl_seconds = ttl_seconds
        self._monotonic = monotonic
        self._tokens: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()
        # What the client was granted: a request for more gets a token with these only (RFC 6749
        # section 3.3 lets the server narrow the scope; the answer's ``scope`` says which it has).
        self.client_scopes = SCOPES

    def credentials_valid(self, client_id: str, client_secret: str) -> bool:
        id_ok = hmac.compare_digest(client_id.encode(), self._client_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), self._client_secret.encode())
        return id_ok and secret_ok

    def issue(self, scope: str | None) -> IssuedToken:
        """A new token with the requested scopes (all of them when none are asked for)."""
        wanted = frozenset(scope.split()) if scope and scope.strip() else SCOPES
        unknown = wanted - SCOPES
        if unknown:
            raise InvalidScope(" ".join(sorted(unknown)))
        token = IssuedToken(
            value="rk_at_" + secrets.token_urlsafe(32),
            account_id=self._account_id,
            scopes=wanted & self.client_scopes,
            expires_at=self._monotonic() + self.ttl_seconds,
        )
        with self._lock:
            now = self._monotonic()
            # Expired tokens are forgotten as new ones are issued, so the table stays small.
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            self._tokens[token.value] = token
        return token

    def lookup(self, value: str) -> IssuedToken | None:
        """The live token with this value; None when unknown or expired."""
        with self._lock:
            token = self._tokens.get(value)
        if token is None or token.expires_at <= self._monotonic():
            return None
        return token

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()
        self.client_scopes = SCOPES
