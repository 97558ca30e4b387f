"""The intake's own CPU per request, without the network or the database: both apps driven in process.

    python -m bench.intake.in_process [--requests 1000] [--repeats 40]

The service's app (``create_app``; worker off, no sandboxes) and bench/intake/baseline_app.py get
the same signed Rankr webhooks through their ASGI interface, with an insert that does nothing,
alternating in one process. Each app's figure is its fastest repeat, in microseconds of CPU per
request. With uvicorn, the driver and the database out of the picture (under wrk they are most of
a request), what separates the two is what the service does in Python beyond the baseline: the
shape check, the ordering key, the answer, the counter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Scope

from app.inbox.writer import InboxWriter
from app.kit.loop import started
from bench.intake.run import INTAKE_ONLY, signed_webhooks


class NoWrite(InboxWriter):
    async def insert(self, row: dict[str, Any]) -> bool:
        return True

    async def close(self) -> None:
        return None


def apps() -> dict[str, ASGIApp]:
    # DATABASE_URL is never opened: the lifespan does not run.
    os.environ.update({**INTAKE_ONLY, "DATABASE_URL": "sqlite:///unused.db"})
    from app.config import Settings
    from app.inbox.intake import IntakeContext
    from app.kit.clock import utcnow
    from app.main import create_app
    from bench.intake import baseline_app

    settings = Settings()
    service = create_app(settings)
    service.state.intake = IntakeContext(
        writer=NoWrite(),
        clock=utcnow,
        on_stored=lambda: None,
        rankr_secrets=settings.rankr_secrets,
        ghl_verifier=settings.ghl_verifier,
    )
    baseline_app.app.state.writer = NoWrite()
    return {"baseline": baseline_app.app, "service": service}


def scopes(count: int) -> list[tuple[Scope, bytes]]:
    requests: list[tuple[Scope, bytes]] = []
    for msg_id, stamp, signature, body in signed_webhooks(count):
        headers = [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"webhook-id", msg_id.encode()),
            (b"webhook-timestamp", str(stamp).encode()),
            (b"webhook-signature", signature.encode()),
        ]
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/webhooks/rankr",
            "raw_path": b"/webhooks/rankr",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        requests.append((scope, body))
    return requests


async def drive(app: ASGIApp, requests: list[tuple[Scope, bytes]]) -> list[int]:
    """Each request through the app, as a server would hand it over; the statuses answered."""
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for scope, body in requests:

        async def receive(body: bytes = body) -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await app(dict(scope), receive, send)
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    targets = apps()
    requests = scopes(args.requests)
    loop = asyncio.new_event_loop()
    for name, app in targets.items():
        statuses = set(loop.run_until_complete(drive(app, requests)))
        if not statuses <= {200, 202}:
            raise SystemExit(f"{name} answered {statuses}")
    started()  # as serve does once built
    best = dict.fromkeys(targets, float("inf"))
    for _ in range(args.repeats):
        for name, app in targets.items():
            began = time.process_time()
            loop.run_until_complete(drive(app, requests))
            best[name] = min(best[name], (time.process_time() - began) / len(requests) * 1e6)
    print(
        json.dumps(
            {
                "baseline_cpu_us": round(best["baseline"], 1),
                "service_cpu_us": round(best["service"], 1),
                "difference_us": round(best["service"] - best["baseline"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
