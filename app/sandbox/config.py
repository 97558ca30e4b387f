"""Settings of the built-in sandboxes: credentials they accept, limits, retry schedules, fault defaults.

Every knob has a default that mirrors the real product (documented budgets, token lifetimes) except the
webhook retry schedules, which are sped up from hours to fractions of a second so that end-to-end tests
can watch a retry happen. Control routes change the run-time ones (rate limit, faults, webhooks) later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.kit.clock import Clock, utcnow
from app.sandbox import keys


@dataclass
class SandboxConfig:
    """How the GHL and Rankr sandboxes behave; ``webhook_target`` is the service's base URL (or None)."""

    webhook_target: str | None
    ghl_location_id: str = keys.GHL_LOCATION_ID
    ghl_token: str = keys.GHL_PRIVATE_TOKEN
    ghl_company_id: str = keys.GHL_COMPANY_ID
    ghl_location_name: str = "Sandbox sub-account"
    ghl_client_id: str = keys.GHL_CLIENT_ID
    ghl_client_secret: str = keys.GHL_CLIENT_SECRET
    rankr_account_id: str = keys.RANKR_ACCOUNT_ID
    rankr_client_id: str = keys.RANKR_CLIENT_ID
    rankr_client_secret: str = keys.RANKR_CLIENT_SECRET
    ghl_rate_max: int = 100
    ghl_rate_window_seconds: float = 10.0
    ghl_daily_limit: int = 200_000
    rankr_rate_max: int = 600
    rankr_rate_window_seconds: float = 60.0

    # GHL: the ``Version`` header values accepted on the Contacts API.
    ghl_api_versions: tuple[str, ...] = ("2021-07-28",)
    # GHL's "Allow duplicate contacts" location setting; off by default, as in a new location.
    ghl_allow_duplicate_contacts: bool = False
    # GHL OAuth: access tokens live about a day (docs/oauth/Authorization.md: expires_in 86399);
    # authorization codes are single-use and short-lived. Tests shorten the lifetime.
    ghl_access_token_ttl_seconds: float = 86399.0
    ghl_code_ttl_seconds: float = 600.0
    # Rankr: client-credentials tokens live this long (the yaml documents 3600 s).
    rankr_token_ttl_seconds: float = 3600.0

    # Webhook delivery. GHL re-sends only on 429, six times ten minutes apart; Rankr re-sends on any
    # non-2xx or timeout after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h. Same counts here, sped up.
    ghl_webhook_retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
    rankr_webhook_retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
    webhook_timeout_seconds: float = 5.0
    webhooks_enabled: bool = True
    webhook_drop_rate: float = 0.0

    # Faults injected into API answers (control routes change them per sandbox at run time).
    error_rate: float = 0.0
    error_status: int = 503
    latency_ms: float = 0.0
    lost_answer_rate: float = 0.0
    answer_latency_ms: float = 0.0

    # Seeds the fault and drop dice (None: unpredictable). Record ids never use it, so a restarted
    # sandbox does not hand out ids a service may still hold links to.
    random_seed: int | None = None
    # How many API requests and webhook deliveries the inspection routes remember.
    request_log_size: int = 100_000
    delivery_log_size: int = 10_000

    clock: Clock = field(default=utcnow)
    monotonic: Callable[[], float] = field(default=time.monotonic)
