"""The GHL marketplace install, driven as an admin's browser drives it: install URL, chooser, callback."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.sandbox import keys
from tests.support.service import Service, query


def start(service: Service, rankr_account: str = keys.RANKR_ACCOUNT_ID) -> dict[str, str]:
    """GET /oauth/ghl/install; the chooser's query parameters it redirected to."""
    answer = service.http.get(
        f"{service.url}/oauth/ghl/install", params={"rankrAccountId": rankr_account}, follow_redirects=False
    )
    assert answer.status_code == 302, answer.text
    target = urlsplit(answer.headers["location"])
    assert target.path.endswith("/sandbox/ghl/oauth/chooselocation"), target
    return {name: values[0] for name, values in parse_qs(target.query).items()}


def choose(
    service: Service, params: dict[str, str], *, choice: str = "location", decision: str = "approve"
) -> str:
    """Open the chooser page and submit it; the URL GHL redirects the browser to (the callback)."""
    chooser = f"{service.ghl.base}/oauth/chooselocation"
    assert service.http.get(chooser, params=params).status_code == 200
    form = {name: params.get(name, "") for name in ("client_id", "redirect_uri", "scope", "state")}
    answer = service.http.post(chooser, data={**form, "choice": choice, "decision": decision})
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def install(
    service: Service, *, choice: str = "location", rankr_account: str = keys.RANKR_ACCOUNT_ID
) -> httpx.Response:
    """The whole install; the callback's answer (an HTML page)."""
    return service.http.get(choose(service, start(service, rankr_account), choice=choice))


def oauth_state(service: Service) -> dict[str, Any]:
    return dict(service.http.get(f"{service.ghl.base}/_sandbox/oauth").json())


def oauth_control(service: Service, path: str = "", **body: Any) -> dict[str, Any]:
    answer = service.http.post(f"{service.ghl.base}/_sandbox/oauth{path}", json=body)
    answer.raise_for_status()
    return dict(answer.json())


def credential_rows(service: Service) -> list[dict[str, Any]]:
    return query(
        service.database_url,
        "SELECT connection_id, company_id, kind, state, access_token, refresh_token, generation "
        "FROM ghl_credentials ORDER BY id",
    )


def token_of(service: Service, connection_id: int = 1) -> dict[str, Any]:
    [entry] = [c for c in service.status()["connections"] if c["id"] == connection_id]
    return dict(entry["token"])
