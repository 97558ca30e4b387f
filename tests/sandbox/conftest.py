"""Sandbox test fixtures: a webhook capture server and the standalone sandbox app, both on loopback.

The two servers live for the whole session; every test starts from reset sandboxes and an empty capture.
Tests talk HTTP only, as the service and a person would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.sandbox import Sandbox, SandboxConfig, create_standalone_app, keys
from tests.sandbox.capture import Capture
from tests.support.server import serve

FAST_RETRIES = (0.01, 0.01, 0.01, 0.01, 0.01, 0.01)

# The webhooks of one Rankr contact's life, the same whether a client (API) or a person (pages) acts:
# create, update; a task created, edited, completed, reopened, deleted; a note created, edited,
# deleted; the contact deleted.
RANKR_LIFE_CYCLE_EVENTS = [
    "contact.created",
    "contact.updated",
    "task.created",
    "task.updated",
    "task.completed",
    "task.updated",
    "task.deleted",
    "note.created",
    "note.updated",
    "note.deleted",
    "contact.deleted",
]


@dataclass
class Env:
    """A running sandbox and the clients a test uses on it."""

    sandbox: Sandbox
    url: str  # the server root; the sandboxes are under /sandbox
    capture: Capture
    http: httpx.Client

    @property
    def ghl_base(self) -> str:
        return f"{self.url}/sandbox/ghl"

    @property
    def rankr_base(self) -> str:
        return f"{self.url}/sandbox/rankr"

    def ghl(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {keys.GHL_PRIVATE_TOKEN}", "Version": "2021-07-28"}
        sent.update(headers or {})
        return self.http.request(method, f"{self.ghl_base}{path}", headers=sent, **kwargs)

    def rankr_token(self, scope: str | None = None) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": keys.RANKR_CLIENT_ID,
            "client_secret": keys.RANKR_CLIENT_SECRET,
        }
        if scope:
            form["scope"] = scope
        answer = self.http.post(f"{self.rankr_base}/oauth/token", data=form)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def rankr(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self._rankr_token}", **(headers or {})}
        return self.http.request(method, f"{self.rankr_base}{path}", headers=headers, **kwargs)

    def control(self, side: str, **changes: Any) -> dict[str, Any]:
        answer = self.http.post(f"{self.url}/sandbox/{side}/_sandbox/control", json=changes)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def drain(self) -> None:
        for side in ("ghl", "rankr"):
            answer = self.http.post(
                f"{self.url}/sandbox/{side}/_sandbox/webhooks/drain", params={"timeout": 10}
            )
            assert answer.status_code == 200, answer.text

    def requests(self, side: str, since: int = 0) -> dict[str, Any]:
        answer = self.http.get(f"{self.url}/sandbox/{side}/_sandbox/requests", params={"since": since})
        return dict(answer.json())

    def reset(self) -> None:
        self.drain()
        for side in ("ghl", "rankr"):
            self.http.post(f"{self.url}/sandbox/{side}/_sandbox/reset").raise_for_status()
        self.capture.clear()
        self._rankr_token = self.rankr_token()

    _rankr_token: str = ""


@pytest.fixture(scope="session")
def capture() -> Iterator[Capture]:
    receiver = Capture()
    with serve(receiver.app) as url:
        receiver.url = url
        yield receiver


@pytest.fixture(scope="session")
def server(capture: Capture) -> Iterator[Env]:
    config = SandboxConfig(
        webhook_target=capture.url,
        ghl_webhook_retry_delays=FAST_RETRIES,
        rankr_webhook_retry_delays=FAST_RETRIES,
        webhook_timeout_seconds=2.0,
        random_seed=20240601,
    )
    app = create_standalone_app(config)
    with serve(app) as url, httpx.Client(timeout=15) as http:
        yield Env(app.state.sandbox, url, capture, http)


@pytest.fixture
def env(server: Env) -> Env:
    server.reset()
    return server


@pytest.fixture
def contact_id(env: Env) -> str:
    """A GHL contact to hang tasks and notes on."""
    answer = env.ghl("POST", "/contacts/", json={"locationId": keys.GHL_LOCATION_ID, "firstName": "Base"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["contact"]["id"])
