"""The service under test, served on a loopback port with its sandboxes, and a user's view of both products.

Tests act as people and other integrations do: they change records through the sandboxes' APIs
(which then send signed webhooks to the service, as the real products do), and read the results back
from the sandboxes. The sandboxes' request logs count the writes the service made upstream.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx

from app.config import Settings
from app.kit.signatures import WebhookSecret, load_private_key, sign_ghl_ed25519, sign_ghl_rsa, sign_standard
from app.main import create_app
from app.sandbox import keys
from tests.support.server import reserve_port, serve

T = TypeVar("T")

# What the tests read of the service's tables, end to end here and in process (tests/support/inprocess.py).
EVENTS_SQL = "SELECT source, event_id, type, status, attempts, last_error FROM webhook_events ORDER BY id"
LINKS_SQL = "SELECT kind, state, rankr_id, ghl_id, snapshot FROM links ORDER BY id"
AUDIT_SQL = "SELECT direction, action, result, rankr_id, ghl_id, changes FROM audit_entries ORDER BY id"
# How a test calls the sandboxes' APIs, as the service does.
GHL_HEADERS = {"Authorization": f"Bearer {keys.GHL_PRIVATE_TOKEN}", "Version": "2021-07-28"}
RANKR_TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": keys.RANKR_CLIENT_ID,
    "client_secret": keys.RANKR_CLIENT_SECRET,
}


def record_writes(requests: list[dict[str, Any]]) -> list[str]:
    """The record writes among a sandbox's logged requests (token requests are not record writes)."""
    return [f"{r['method']} {r['path']}" for r in requests if r["write"] and r["path"] != "/oauth/token"]


def with_email(contacts: list[dict[str, Any]], email: str) -> list[dict[str, Any]]:
    return [c for c in contacts if (c.get("email") or "").lower() == email.lower()]


def wait_for(check: Callable[[], T | None], timeout: float = 15.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Product:
    """One sandboxed product (GHL or Rankr) seen over HTTP: its API, its UI, its control routes."""

    def __init__(self, http: httpx.Client, base: str, name: str) -> None:
        self.http = http
        self.base = base
        self.name = name

    def control(self, **changes: Any) -> None:
        self.http.post(f"{self.base}/_sandbox/control", json=changes).raise_for_status()

    def mark(self) -> int:
        return int(self.http.get(f"{self.base}/_sandbox/requests", params={"since": 10**12}).json()["next"])

    def requests_since(self, mark: int) -> list[dict[str, Any]]:
        answer = self.http.get(f"{self.base}/_sandbox/requests", params={"since": mark}).json()
        return list(answer["requests"])

    def writes_since(self, mark: int) -> list[str]:
        return record_writes(self.requests_since(mark))

    def seed(self, contacts: list[dict[str, Any]]) -> list[str]:
        """Create contacts quickly and without webhooks (records that existed before the service)."""
        answer = self.http.post(f"{self.base}/_sandbox/seed", json={"contacts": contacts})
        assert answer.status_code == 201, answer.text
        return list(answer.json()["ids"])

    def drain(self) -> None:
        self.http.post(f"{self.base}/_sandbox/webhooks/drain", params={"timeout": 20}).raise_for_status()

    def deliveries(self) -> list[dict[str, Any]]:
        return list(
            self.http.get(f"{self.base}/_sandbox/webhooks", params={"body": "true"}).json()["deliveries"]
        )

    def contacts(self) -> list[dict[str, Any]]:
        return list(self.http.get(f"{self.base}/_sandbox/state").json()["contacts"])

    def by_email(self, email: str) -> list[dict[str, Any]]:
        return with_email(self.contacts(), email)


class Ghl(Product):
    def __init__(self, http: httpx.Client, base: str) -> None:
        super().__init__(http, base, "ghl")
        self.headers = GHL_HEADERS

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.base}{path}", headers=self.headers, **kwargs)

    def create(self, **fields: Any) -> dict[str, Any]:
        answer = self.api("POST", "/contacts/", json={"locationId": keys.GHL_LOCATION_ID, **fields})
        assert answer.status_code == 201, answer.text
        return dict(answer.json()["contact"])

    def get(self, contact_id: str) -> dict[str, Any] | None:
        answer = self.api("GET", f"/contacts/{contact_id}")
        if answer.status_code in (400, 404):
            return None
        answer.raise_for_status()
        return dict(answer.json()["contact"])

    def update(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        answer = self.api("PUT", f"/contacts/{contact_id}", json=fields)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["contact"])

    def delete(self, contact_id: str) -> None:
        self.api("DELETE", f"/contacts/{contact_id}").raise_for_status()


class Rankr(Product):
    def __init__(self, http: httpx.Client, base: str) -> None:
        super().__init__(http, base, "rankr")
        self._token: str | None = None

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._token is None:
            answer = self.http.post(f"{self.base}/oauth/token", data=RANKR_TOKEN_FORM)
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        headers = {"Authorization": f"Bearer {self._token}"}
        return self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs)

    def create(self, **fields: Any) -> dict[str, Any]:
        answer = self.api("POST", "/contacts", json=fields)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def get(self, contact_id: str) -> dict[str, Any] | None:
        answer = self.api("GET", f"/contacts/{contact_id}")
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return dict(answer.json())

    def update(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        answer = self.api("PUT", f"/contacts/{contact_id}", json=fields)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def delete(self, contact_id: str) -> None:
        assert self.api("DELETE", f"/contacts/{contact_id}").status_code == 204


class Service:
    """The running service: its URL, the two products, and ways to wait until it is idle."""

    def __init__(self, url: str, http: httpx.Client, database_url: str) -> None:
        self.url = url
        self.http = http
        self.database_url = database_url
        self.ghl = Ghl(http, f"{url}/sandbox/ghl")
        self.rankr = Rankr(http, f"{url}/sandbox/rankr")

    def status(self) -> dict[str, Any]:
        answer = self.http.get(f"{self.url}/status")
        answer.raise_for_status()
        return dict(answer.json())

    def open_events(self) -> int:
        facts = self.status()
        total = sum(
            entry["events"][state]
            for entry in facts["connections"]
            for state in ("pending", "processing", "retrying")
        )
        return total + sum(facts["unrouted"]["events"][s] for s in ("pending", "processing", "retrying"))

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until both sandboxes delivered every webhook and the service applied every event."""
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while quiet_rounds < 2:
            if time.monotonic() > deadline:
                raise AssertionError(f"the service did not settle: {self.status()}")
            self.ghl.drain()
            self.rankr.drain()
            if self.open_events() == 0:
                quiet_rounds += 1
            else:
                quiet_rounds = 0
            time.sleep(0.05)

    def events(self, source: str | None = None) -> list[dict[str, Any]]:
        rows = query(self.database_url, EVENTS_SQL)
        return [row for row in rows if source is None or row["source"] == source]

    def links(self) -> list[dict[str, Any]]:
        return query(self.database_url, LINKS_SQL)

    def audit(self) -> list[dict[str, Any]]:
        return query(self.database_url, AUDIT_SQL)

    # --- webhooks the test signs itself (redeliveries, replays, bad input) ---------------------------

    def post_rankr(
        self, payload: dict[str, Any] | bytes, *, msg_id: str | None = None, at: datetime | None = None
    ) -> httpx.Response:
        body, headers = signed_rankr(payload, msg_id=msg_id, at=at)
        return self.http.post(f"{self.url}/webhooks/rankr", content=body, headers=headers)

    def post_ghl(self, payload: dict[str, Any] | bytes, *, scheme: str = "ed25519") -> httpx.Response:
        body, headers = signed_ghl(payload, scheme=scheme)
        return self.http.post(f"{self.url}/webhooks/ghl", content=body, headers=headers)


def signed_rankr(
    payload: dict[str, Any] | bytes, *, msg_id: str | None = None, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """A Rankr webhook's body and headers, signed with the sandbox's secret (Standard Webhooks)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = int((at or datetime.now(UTC)).timestamp())
    signature = sign_standard(WebhookSecret.parse(keys.RANKR_WEBHOOK_SECRET), msg_id, stamp, body)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return body, headers


def signed_ghl(payload: dict[str, Any] | bytes, *, scheme: str = "ed25519") -> tuple[bytes, dict[str, str]]:
    """A GHL webhook's body and headers, signed with the sandbox's Ed25519 or (legacy) RSA key."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    if scheme == "ed25519":
        headers["x-ghl-signature"] = sign_ghl_ed25519(load_private_key(keys.GHL_ED25519_PRIVATE_PEM), body)  # type: ignore[arg-type]
    else:
        headers["x-wh-signature"] = sign_ghl_rsa(load_private_key(keys.GHL_RSA_PRIVATE_PEM), body)  # type: ignore[arg-type]
    return body, headers


def rankr_event(kind: str, data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    return {
        "type": kind,
        "timestamp": (at or datetime.now(UTC)).isoformat(),
        "accountId": keys.RANKR_ACCOUNT_ID,
        "data": data,
    }


def ghl_event(kind: str, data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    return {
        **data,
        "type": kind,
        "locationId": keys.GHL_LOCATION_ID,
        "webhookId": str(uuid.uuid4()),
        "timestamp": (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
    }


def query(database_url: str, sql: str) -> list[dict[str, Any]]:
    """Rows of a read-only query, straight from the database (SQLite file or Postgres schema)."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(database_url.split("sqlite:///", 1)[1])
        connection.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in connection.execute(sql)]
        finally:
            connection.close()
    server, _, options = database_url.partition("?options=-csearch_path%3D")
    output = subprocess.run(
        [
            "psql",
            server,
            "-X",
            "-q",
            "-t",
            "-A",
            "-c",
            f"SET search_path TO {options}; SELECT json_agg(q) FROM ({sql}) q",  # noqa: S608 - test SQL
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return list(json.loads(output) or []) if output else []


def execute(database_url: str, sql: str) -> None:
    """Run one statement straight on the database (to set up states no API call makes)."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(database_url.split("sqlite:///", 1)[1])
        try:
            with connection:
                connection.execute(sql)
        finally:
            connection.close()
        return
    server, _, schema = database_url.partition("?options=-csearch_path%3D")
    sql = f"SET search_path TO {schema}; {sql}"
    subprocess.run(
        ["psql", server, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True
    )


def max_in_window(requests: list[dict[str, Any]], seconds: float) -> int:
    """The most requests that started within any ``seconds``-long window."""
    times = sorted(datetime.fromisoformat(r["at"].replace("Z", "+00:00")) for r in requests)
    window = timedelta(seconds=seconds)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_settings(database_url: str, public_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "sandbox": True,
        "public_url": public_url,
        "worker_poll_seconds": 0.05,
        "retry_schedule": "0.2,0.5,1",
        "log_level": "WARNING",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextmanager
def running_service(database_url: str, **overrides: Any) -> Iterator[Service]:
    """The service with its sandboxes and in-process worker, on a loopback port, until the block ends."""
    sock = reserve_port()
    public_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(test_settings(database_url, public_url, **overrides))
    with serve(app, sock) as url, httpx.Client(timeout=30) as http:
        service = Service(url, http, database_url)
        # Started means its connections were checked (when it has a schema): the faults a test
        # injects then do not meet the start-up verification's requests.
        if http.get(f"{url}/readyz").status_code == 200:
            wait_for(
                lambda: all(entry["verification"]["checkedAt"] for entry in service.status()["connections"]),
                what="the start-up verification",
            )
        yield service
