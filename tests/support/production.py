"""The service configured as in production (sandbox mode off), its upstream APIs served in-process.

For tests that want the production code paths (admin token, API docs admin-only, a configured
connection, the OAuth app) without a network: every upstream URL points at ``UPSTREAM``, and
``upstream_transport()`` answers it with a fresh pair of sandboxes over ``httpx.ASGITransport``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from app.config import Settings
from app.kit.crypto import new_key
from app.sandbox import Sandbox, SandboxConfig, keys
from tests.support.inprocess import UNPACED, UNPACED_LIMIT

ADMIN_TOKEN = "production-like-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
UPSTREAM = "http://upstream.test"


def production_settings(database_url: str, **changes: Any) -> Settings:
    """Sandbox mode off: a GHL private integration, a Rankr client and an OAuth app, all pointing at
    the sandboxes; the worker and reconciliation off (tests drive what runs)."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "sandbox": False,
        "public_url": "http://service.test",
        "admin_token": ADMIN_TOKEN,
        "token_encryption_key": new_key(),
        "ghl_api_base_url": f"{UPSTREAM}/ghl",
        "ghl_marketplace_url": f"{UPSTREAM}/ghl",
        "ghl_location_id": keys.GHL_LOCATION_ID,
        "ghl_private_token": keys.GHL_PRIVATE_TOKEN,
        "ghl_client_id": keys.GHL_CLIENT_ID,
        "ghl_client_secret": keys.GHL_CLIENT_SECRET,
        "ghl_webhook_public_key": keys.GHL_RSA_PUBLIC_PEM,
        "ghl_webhook_ed25519_public_key": keys.GHL_ED25519_PUBLIC_PEM,
        "rankr_api_base_url": f"{UPSTREAM}/rankr",
        "rankr_account_id": keys.RANKR_ACCOUNT_ID,
        "rankr_client_id": keys.RANKR_CLIENT_ID,
        "rankr_client_secret": keys.RANKR_CLIENT_SECRET,
        "rankr_webhook_secrets": keys.RANKR_WEBHOOK_SECRET,
        "run_worker_in_process": False,
        "reconcile_interval_seconds": 0,
        "_env_file": None,
        **UNPACED,
        **changes,
    }
    return Settings(**values)


def upstream_transport() -> Callable[[FastAPI], httpx.AsyncBaseTransport]:
    """``create_app``'s ``upstream_transport``: both sandboxes, sending no webhooks back."""
    sandbox = Sandbox(SandboxConfig(webhook_target=None))
    # Fuzzing is about answers, not budgets: neither side's limiter may hold a request back.
    for side in (sandbox.ghl, sandbox.rankr):
        side.apply_control({"rate_max": UNPACED_LIMIT})
    return lambda _app: httpx.ASGITransport(app=sandbox.app)
