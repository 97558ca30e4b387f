"""GHL's OAuth 2.0 token endpoints (openapi/oauth.json): code exchange, refresh, location tokens.

Requests are form-encoded. A refresh is never retried after a timeout (GHL may have rotated the
tokens and spent the old refresh token; see ``app.integrations.ghl.tokens``). ``invalid_grant``
raises ``InvalidGrant``. Error messages carry GHL's ``error`` / ``error_description``, never a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from app.errors import PermanentUpstreamError
from app.integrations.upstream import UpstreamClient


class InvalidGrant(PermanentUpstreamError):
    """GHL refused the code or refresh token (spent, revoked, expired): only a new install helps."""


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    access_token: str
    refresh_token: str | None
    expires_in: float | None
    scope: str | None
    user_type: str | None
    location_id: str | None
    company_id: str | None
    approved_locations: tuple[str, ...]

    @classmethod
    def parse(cls, body: Any) -> TokenAnswer:
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise PermanentUpstreamError("ghl", "the token answer carries no access_token")
        expires = body.get("expires_in")
        approved = body.get("approvedLocations") or []
        return cls(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token") if isinstance(body.get("refresh_token"), str) else None,
            expires_in=float(expires) if isinstance(expires, int | float) else None,
            scope=body.get("scope"),
            user_type=body.get("userType"),
            location_id=body.get("locationId"),
            company_id=body.get("companyId"),
            approved_locations=tuple(str(item) for item in approved if isinstance(item, str)),
        )


class GhlOAuthClient(UpstreamClient):
    upstream = "ghl"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        version: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(http, **kwargs)
        self._base = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._version = version

    def _error_message(self, body: dict[str, Any], response: httpx.Response) -> str:
        error, description = body.get("error"), body.get("error_description") or body.get("message")
        if isinstance(error, str):
            return f"{error}: {description}" if isinstance(description, str) else error
        if isinstance(description, str):
            return description
        return super()._error_message(body, response)

    async def _token(self, form: dict[str, str], headers: dict[str, str] | None = None) -> TokenAnswer:
        try:
            response = await self.send(
                "POST",
                f"{self._base}/oauth/token" if "grant_type" in form else f"{self._base}/oauth/locationToken",
                headers={"Accept": "application/json", **(headers or {})},
                data=form,
                idempotent=False,
            )
        except PermanentUpstreamError as exc:
            if exc.body.get("error") == "invalid_grant":
                raise InvalidGrant("ghl", exc.message, status=exc.status) from None
            raise
        return TokenAnswer.parse(response.json())

    def _client(self, grant_type: str) -> dict[str, str]:
        return {"client_id": self._client_id, "client_secret": self._client_secret, "grant_type": grant_type}

    async def exchange_code(self, code: str) -> TokenAnswer:
        form = {**self._client("authorization_code"), "code": code, "redirect_uri": self._redirect_uri}
        return await self._token(form)

    async def refresh(self, refresh_token: str, user_type: str) -> TokenAnswer:
        form = {**self._client("refresh_token"), "refresh_token": refresh_token, "user_type": user_type}
        return await self._token(form)

    async def location_token(self, agency_token: str, company_id: str, location_id: str) -> TokenAnswer:
        headers = {"Authorization": f"Bearer {agency_token}", "Version": self._version}
        return await self._token({"companyId": company_id, "locationId": location_id}, headers)
