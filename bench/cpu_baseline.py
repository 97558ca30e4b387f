"""Baseline of the CPU benchmark: the least work a synced contact change needs, written plainly.

    python -m bench.cpu_baseline --port PORT   (settings from the service's environment variables)

One process, as ``serve`` with its worker in process: both webhook endpoints (signature checked,
JSON parsed, one row inserted into the service's own ``webhook_events`` table) and four worker loops
that each claim an event (one ``UPDATE ... RETURNING``, ``FOR UPDATE SKIP LOCKED`` on Postgres),
look up its link and compare the mapped fields' hash with the one last synced. An echo (or no
change) is then marked done in the same transaction. A change stores the new hash first (so that
its echo finds it), makes one upstream write with httpx (a keep-alive client per upstream), then
writes the link, an audit row and the event's ``done`` in one transaction. Statements are
SQLAlchemy Core text on the service's engine (``app.db.create_engine``), lone ones autocommitted on
Postgres as the service's are; no retries, pacing, leases beyond the status, ordering, coalescing
or validation: those are what the benchmark prices.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.db import create_engine
from app.kit.clock import utcnow
from app.kit.signatures import GhlVerifier, WebhookSecret, load_public_key, verify_standard

FIELDS = ("email", "phone", "firstName", "lastName", "companyName")
CONCURRENCY = 4
log = logging.getLogger(__name__)

INSERT_EVENT = text(
    "INSERT INTO webhook_events (source, event_id, type, account_key, ordering_key, payload, received_at,"
    " status, attempts, next_attempt_at) VALUES (:source, :event_id, :type, :account, :ordering, :payload,"
    " :now, 'pending', 0, :now) ON CONFLICT (source, event_id) DO NOTHING"
)
CLAIM = (
    "UPDATE webhook_events SET status = 'processing', attempts = attempts + 1 WHERE id = ("
    "SELECT id FROM webhook_events WHERE status = 'pending' ORDER BY id LIMIT 1{lock})"
    " RETURNING id, source, type, payload"
)
DONE = text("UPDATE webhook_events SET status = 'done', finished_at = :now WHERE id = :id")
LINK_BY = {
    "rankr": text("SELECT id, rankr_id, ghl_id, synced_hash FROM bench_links WHERE rankr_id = :id"),
    "ghl": text("SELECT id, rankr_id, ghl_id, synced_hash FROM bench_links WHERE ghl_id = :id"),
}
INSERT_LINK = text(
    "INSERT INTO bench_links (rankr_id, ghl_id, synced_hash, updated_at) VALUES (:rankr, :ghl, :hash, :now)"
)
UPDATE_LINK = text("UPDATE bench_links SET synced_hash = :hash, updated_at = :now WHERE id = :id")
INSERT_AUDIT = text(
    "INSERT INTO bench_audit (at, source_event, action, detail) VALUES (:now, :event, :action, :detail)"
)
TABLES = (
    "CREATE TABLE IF NOT EXISTS bench_links (id {key}, rankr_id VARCHAR(255) UNIQUE,"
    " ghl_id VARCHAR(255) UNIQUE, synced_hash VARCHAR(64), updated_at {stamp})",
    "CREATE TABLE IF NOT EXISTS bench_audit (id {key}, at {stamp}, source_event BIGINT,"
    " action VARCHAR(32), detail TEXT)",
)


def fingerprint(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([fields.get(name) for name in FIELDS]).encode()).hexdigest()


class Baseline:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        postgres = engine.dialect.name == "postgresql"
        # One statement alone needs no BEGIN and COMMIT around it (on Postgres; SQLite's driver
        # sends none for a lone statement either way).
        self.single = engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
        self.claim = text(CLAIM.format(lock=" FOR UPDATE SKIP LOCKED" if postgres else ""))
        self.wake = asyncio.Event()
        env = os.environ
        self.rankr_secrets = [WebhookSecret.parse(env["RANKR_WEBHOOK_SECRETS"])]
        ed25519_key = load_public_key(env["GHL_WEBHOOK_ED25519_PUBLIC_KEY"])
        rsa_key = load_public_key(env["GHL_WEBHOOK_PUBLIC_KEY"])
        self.ghl_verifier = GhlVerifier(ed25519_key, rsa_key)  # type: ignore[arg-type]
        self.location = env["GHL_LOCATION_ID"]
        self.ghl = httpx.AsyncClient(
            base_url=env["GHL_API_BASE_URL"],
            headers={"Authorization": f"Bearer {env['GHL_PRIVATE_TOKEN']}", "Version": "2021-07-28"},
        )
        self.rankr = httpx.AsyncClient(base_url=env["RANKR_API_BASE_URL"])

    async def start(self) -> None:
        sqlite = self.engine.dialect.name == "sqlite"
        key = "INTEGER PRIMARY KEY" if sqlite else "BIGSERIAL PRIMARY KEY"
        stamp = "TIMESTAMP" if sqlite else "TIMESTAMP WITH TIME ZONE"
        async with self.engine.begin() as connection:
            for statement in TABLES:
                await connection.execute(text(statement.format(key=key, stamp=stamp)))
        env = os.environ
        token = await self.rankr.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": env["RANKR_CLIENT_ID"],
                "client_secret": env["RANKR_CLIENT_SECRET"],
            },
        )
        token.raise_for_status()
        self.rankr.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    # --- intake ----------------------------------------------------------------------------------

    async def store(self, source: str, event_id: str, payload: dict[str, Any], record: str) -> Response:
        now = utcnow()
        account = payload.get("accountId") or payload.get("locationId") or ""
        async with self.single.begin() as connection:
            await connection.execute(
                INSERT_EVENT,
                {
                    "source": source,
                    "event_id": event_id,
                    "type": payload["type"],
                    "account": account,
                    "ordering": f"{source}:{account}:contact:{record}",
                    "payload": json.dumps(payload),
                    "now": now,
                },
            )
        self.wake.set()
        return Response(status_code=202)

    async def rankr_webhook(self, request: Request) -> Response:
        body = await request.body()
        headers = request.headers
        event_id = headers.get("webhook-id")
        verify_standard(
            self.rankr_secrets,
            event_id,
            headers.get("webhook-timestamp"),
            headers.get("webhook-signature"),
            body,
            utcnow(),
        )
        payload = json.loads(body)
        return await self.store("rankr", str(event_id), payload, payload["data"]["contactId"])

    async def ghl_webhook(self, request: Request) -> Response:
        body = await request.body()
        self.ghl_verifier.verify(
            body, request.headers.get("x-ghl-signature"), request.headers.get("x-wh-signature")
        )
        payload = json.loads(body)
        return await self.store("ghl", payload["webhookId"], payload, payload["id"])

    # --- worker ----------------------------------------------------------------------------------

    async def work(self) -> None:
        while True:
            self.wake.clear()  # before the claim: an event stored after it sets it again
            async with self.single.begin() as connection:
                claimed = (await connection.execute(self.claim)).first()
            if claimed is None:
                await self.wake.wait()
                continue
            row_id, source, kind, payload = claimed
            payload = payload if isinstance(payload, dict) else json.loads(payload)
            try:
                await self.apply(row_id, source, kind, payload)
            except Exception:
                # The benchmark's settle then times out, with the cause in the log.
                log.exception("baseline: event %s failed", row_id)

    async def apply(self, row_id: int, source: str, kind: str, payload: dict[str, Any]) -> None:
        fields = payload["data"] if source == "rankr" else payload
        record = fields["contactId"] if source == "rankr" else fields["id"]
        wanted = fingerprint(fields)
        changes = {name: fields.get(name) for name in FIELDS if fields.get(name) is not None}
        now = utcnow()
        async with self.engine.begin() as connection:
            link = (await connection.execute(LINK_BY[source], {"id": record})).first()
            if link is not None and link.synced_hash != wanted:
                # Before the write, so that its echo finds the new state.
                await connection.execute(UPDATE_LINK, {"hash": wanted, "now": now, "id": link.id})
            elif link is not None or source == "ghl":
                # An echo, nothing mapped changed, or (not in this benchmark's mix) a GHL create.
                await self.done(connection, row_id)
                return
        if link is None:
            answer = await self.ghl.post("/contacts/upsert", json={"locationId": self.location, **changes})
        elif source == "rankr":
            answer = await self.ghl.put(f"/contacts/{link.ghl_id}", json=changes)
        else:
            answer = await self.rankr.put(f"/contacts/{link.rankr_id}", json=changes)
        answer.raise_for_status()
        detail = json.dumps({"record": record, "fields": sorted(changes)})
        async with self.engine.begin() as connection:
            if link is None:
                ghl_id = answer.json()["contact"]["id"]
                await connection.execute(
                    INSERT_LINK, {"rankr": record, "ghl": ghl_id, "hash": wanted, "now": now}
                )
            await connection.execute(
                INSERT_AUDIT, {"now": now, "event": row_id, "action": kind, "detail": detail}
            )
            await self.done(connection, row_id)

    async def done(self, connection: AsyncConnection, row_id: int) -> None:
        await connection.execute(DONE, {"now": utcnow(), "id": row_id})


def application(database_url: str) -> Starlette:
    engine = create_engine(database_url)
    baseline = Baseline(engine)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await baseline.start()
        workers = [asyncio.create_task(baseline.work()) for _ in range(CONCURRENCY)]
        yield
        for task in workers:
            task.cancel()
        await engine.dispose()

    async def ready(_request: Request) -> Response:
        return Response("ok")

    routes = [
        Route("/webhooks/rankr", baseline.rankr_webhook, methods=["POST"]),
        Route("/webhooks/ghl", baseline.ghl_webhook, methods=["POST"]),
        Route("/readyz", ready),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = application(os.environ["DATABASE_URL"])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
