"""One Settings object, read from the environment or a ``.env`` file and validated at start-up.

Names follow SERVICE-CONTRACT.md; ``.env.example`` documents every one. Nothing here runs at import:
callers build ``Settings()`` (or ``Settings(**overrides)`` in tests) and pass it down.

Sandbox mode (``SANDBOX``, on by default when no GHL credential is set) points both API clients at
the built-in sandboxes and, unless set explicitly, uses the sandboxes' credentials, signing keys and
connection ids, so ``make run`` works on a bare machine with nothing configured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import sandbox_mode as sandbox_keys
from app.integrations.ghl import keys as ghl_keys
from app.kit.crypto import new_key, parse_keys
from app.kit.signatures import GhlVerifier, WebhookSecret, load_public_key

DeleteMode = Literal["delete", "unlink"]

# Where `make run` serves: the base URL of every derived URL when PUBLIC_URL is not set.
LOCAL_URL = "http://127.0.0.1:8000"


def _pairs(text: str, setting: str) -> dict[str, str]:
    """Parse ``a=b,c=d`` into a mapping; a malformed entry names the setting it came from."""
    result: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        left, sep, right = item.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise ValueError(f"{setting}: expected 'left=right' entries separated by commas, got {item!r}")
        result[left.strip()] = right.strip()
    return result


@dataclass(frozen=True, slots=True)
class ConnectionSeed:
    """The single connection described by the settings (or the sandbox's)."""

    rankr_account_id: str
    ghl_location_id: str


class Settings(BaseSettings):
    """Every setting of the service. See ``.env.example`` for what each one means."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite:///./rankr_ghl_sync.db"
    sandbox: bool | None = None
    run_worker_in_process: bool = True
    # Where GHL, Rankr and browsers reach this service; None: not set (see ``public_base_url``).
    public_url: str | None = None

    ghl_api_base_url: str | None = None
    ghl_api_version: str = "2021-07-28"
    ghl_location_id: str | None = None
    ghl_private_token: SecretStr | None = None
    ghl_client_id: str | None = None
    ghl_client_secret: SecretStr | None = None
    ghl_redirect_uri: str | None = None
    ghl_marketplace_url: str | None = None
    ghl_token_refresh_margin_seconds: float = Field(default=300.0, ge=0)
    needs_reauth_recheck_seconds: float = Field(default=60.0, gt=0)
    ghl_webhook_public_key: str | None = None
    ghl_webhook_ed25519_public_key: str | None = None

    rankr_api_base_url: str | None = None
    rankr_account_id: str | None = None
    rankr_client_id: str | None = None
    rankr_client_secret: SecretStr | None = None
    rankr_webhook_secrets: SecretStr | None = None

    admin_token: SecretStr | None = None
    # Who may read /docs, /redoc and /openapi.json (they list the admin routes): everyone, the admin
    # (bearer token or the status page's sign-in), or nobody. Default: everyone in sandbox mode only.
    api_docs: Literal["public", "admin", "off"] | None = None
    token_encryption_key: SecretStr | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "console"

    # Enough events in hand that a request is waiting whenever a rate-budget slot comes (see .env.example).
    worker_concurrency: int = Field(default=8, ge=1, le=64)
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    worker_lease_seconds: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    retry_schedule: str = "5,30,120,600,1800,3600,10800"
    http_timeout_seconds: float = Field(default=15.0, gt=0)

    audit_retention_days: float = Field(default=90.0, gt=0)
    event_retention_days: float = Field(default=14.0, gt=0)
    prune_interval_seconds: float = Field(default=3600.0, gt=0)
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # Upstream budgets, per GHL location and per Rankr account (docs/oauth/Authorization.md: 100
    # requests per 10 s and 200,000 per day per location; rankr/openapi.yaml: 600 per minute).
    ghl_rate_limit: int = Field(default=100, ge=1)
    ghl_rate_window_seconds: float = Field(default=10.0, gt=0)
    ghl_daily_limit: int | None = Field(default=200_000, ge=1)
    rankr_rate_limit: int = Field(default=600, ge=1)
    rankr_rate_window_seconds: float = Field(default=60.0, gt=0)
    # The share of each budget left unused: it absorbs send delays, clock skew and other callers.
    rate_limit_headroom: float = Field(default=0.03, ge=0, lt=1)
    # Coalescing: how many waiting events of one record the worker folds into one application.
    coalesce_max_events: int = Field(default=100, ge=1)
    # ... and how long a record's events must pause before a burst counts as over (0: never wait).
    coalesce_quiet_seconds: float = Field(default=0.15, ge=0, le=2)

    contact_delete_mode: DeleteMode = "delete"
    unlink_tag: str = "sync-unlinked"
    task_default_due_hours: float = Field(default=24.0, gt=0)
    # The GHL task poll: a round every this many seconds (0: off), reading at most this many contacts'
    # task lists per connection (app/sync/task_poll.py).
    task_poll_seconds: float = Field(default=5.0, ge=0)
    task_poll_contacts: int = Field(default=3, ge=1)
    custom_field_map: str = ""
    user_map: str = ""
    config_file: Path | None = None

    # Backfill and reconciliation (app/backfill).
    conflict_tie_winner: Literal["rankr", "ghl"] = "rankr"
    reconcile_interval_seconds: float = Field(default=900.0, ge=0)
    sync_max_in_flight: int = Field(default=50, ge=1, le=10_000)

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("config_file", "public_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("PUBLIC_URL must be an absolute http(s) URL, e.g. https://sync.example.com")
        if parts.query or parts.fragment or parts.username is not None:
            raise ValueError("PUBLIC_URL must be a base URL, without credentials, query or fragment")
        return value.strip().rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("DATABASE_URL must be a sqlite:/// or postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _check_derived(self) -> Settings:
        # Touch every derived value once so a malformed setting fails at start-up, naming itself.
        _ = (self.retry_delays, self.env_custom_fields, self.env_users, self.rankr_secrets, self.ghl_verifier)
        if self.token_encryption_key is None and self.ghl_client_id and not self.sandbox_mode:
            raise ValueError(
                "TOKEN_ENCRYPTION_KEY is required with GHL_CLIENT_ID: OAuth tokens are stored encrypted"
            )
        if self.token_encryption_key is not None:
            try:
                parse_keys(self.token_encryption_key.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"TOKEN_ENCRYPTION_KEY: {exc}") from exc
        return self

    # --- derived values -------------------------------------------------------------------------

    @property
    def sandbox_mode(self) -> bool:
        if self.sandbox is not None:
            return self.sandbox
        return self.ghl_private_token is None and self.ghl_client_id is None

    @property
    def api_docs_access(self) -> Literal["public", "admin", "off"]:
        if self.api_docs is not None:
            return self.api_docs
        return "public" if self.sandbox_mode else "admin"

    @property
    def public_base_url(self) -> str:
        """The base of every URL of this service that is printed, registered or called back: PUBLIC_URL,
        or, when it is not set, ``LOCAL_URL`` (``serve`` sets it from --host/--port first)."""
        return self.public_url or LOCAL_URL

    @property
    def ghl_base_url(self) -> str:
        if self.ghl_api_base_url:
            return self.ghl_api_base_url.rstrip("/")
        if self.sandbox_mode:
            return f"{self.public_base_url}/sandbox/ghl"
        return "https://services.leadconnectorhq.com"

    @property
    def rankr_base_url(self) -> str:
        if self.rankr_api_base_url:
            return self.rankr_api_base_url.rstrip("/")
        if self.sandbox_mode:
            return f"{self.public_base_url}/sandbox/rankr"
        raise ValueError("RANKR_API_BASE_URL is not set")

    @property
    def ghl_token(self) -> str | None:
        if self.ghl_private_token is not None:
            return self.ghl_private_token.get_secret_value()
        return sandbox_keys.GHL_PRIVATE_TOKEN if self.sandbox_mode else None

    @property
    def rankr_credentials(self) -> tuple[str, str] | None:
        if self.rankr_client_id and self.rankr_client_secret is not None:
            return self.rankr_client_id, self.rankr_client_secret.get_secret_value()
        if self.sandbox_mode:
            return sandbox_keys.RANKR_CLIENT_ID, sandbox_keys.RANKR_CLIENT_SECRET
        return None

    @property
    def ghl_oauth_client(self) -> tuple[str, str] | None:
        """The marketplace app's client id and secret (the GHL sandbox's app in sandbox mode)."""
        if self.ghl_client_id and self.ghl_client_secret is not None:
            return self.ghl_client_id, self.ghl_client_secret.get_secret_value()
        if self.sandbox_mode:
            return sandbox_keys.GHL_CLIENT_ID, sandbox_keys.GHL_CLIENT_SECRET
        return None

    @property
    def ghl_oauth_redirect_uri(self) -> str:
        return self.ghl_redirect_uri or f"{self.public_base_url}/oauth/ghl/callback"

    @property
    def ghl_chooser_url(self) -> str:
        """GHL's location chooser (the app's Authorization Page)."""
        base = self.ghl_marketplace_url or (
            f"{self.public_base_url}/sandbox/ghl"
            if self.sandbox_mode
            else "https://marketplace.gohighlevel.com/v2"
        )
        return f"{base.rstrip('/')}/oauth/chooselocation"

    def encryption_keys(self) -> list[str]:
        """``TOKEN_ENCRYPTION_KEY`` (newest first); in sandbox mode without one, a key kept in a file
        beside the SQLite database (or in the working directory), created on first use."""
        if self.token_encryption_key is not None:
            return parse_keys(self.token_encryption_key.get_secret_value())
        if not self.sandbox_mode:
            raise ValueError("TOKEN_ENCRYPTION_KEY is not set: it is needed to store GHL tokens")
        path = self.sandbox_key_path
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return parse_keys(path.read_text())
        with os.fdopen(descriptor, "w") as out:
            out.write(new_key())
        return parse_keys(path.read_text())

    @property
    def sandbox_key_path(self) -> Path:
        name = "rankr_ghl_sync.token-key"
        if self.database_url.startswith("sqlite:///") and ":memory:" not in self.database_url:
            return Path(self.database_url.removeprefix("sqlite:///")).resolve().parent / name
        return Path.cwd() / name

    @cached_property
    def rankr_secrets(self) -> tuple[WebhookSecret, ...]:
        if self.rankr_webhook_secrets is not None:
            text = self.rankr_webhook_secrets.get_secret_value()
        elif self.sandbox_mode:
            text = sandbox_keys.RANKR_WEBHOOK_SECRET
        else:
            return ()
        try:
            return tuple(WebhookSecret.parse(part) for part in text.split(",") if part.strip())
        except ValueError as exc:
            raise ValueError(f"RANKR_WEBHOOK_SECRETS: {exc}") from exc

    @cached_property
    def ghl_verifier(self) -> GhlVerifier:
        sandbox = self.sandbox_mode
        rsa_pem = self.ghl_webhook_public_key or (
            sandbox_keys.GHL_RSA_PUBLIC_PEM if sandbox else ghl_keys.RSA_PUBLIC_KEY_PEM
        )
        ed_pem = self.ghl_webhook_ed25519_public_key or (
            sandbox_keys.GHL_ED25519_PUBLIC_PEM if sandbox else ghl_keys.ED25519_PUBLIC_KEY_PEM
        )
        try:
            rsa_key, ed_key = load_public_key(rsa_pem), load_public_key(ed_pem)
        except (ValueError, OSError) as exc:
            raise ValueError(f"GHL_WEBHOOK_PUBLIC_KEY / GHL_WEBHOOK_ED25519_PUBLIC_KEY: {exc}") from exc
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

        if not isinstance(rsa_key, rsa.RSAPublicKey):
            raise ValueError("GHL_WEBHOOK_PUBLIC_KEY must be an RSA public key")
        if not isinstance(ed_key, ed25519.Ed25519PublicKey):
            raise ValueError("GHL_WEBHOOK_ED25519_PUBLIC_KEY must be an Ed25519 public key")
        return GhlVerifier(ed25519_key=ed_key, rsa_key=rsa_key)

    @cached_property
    def retry_delays(self) -> tuple[float, ...]:
        try:
            delays = tuple(float(part) for part in self.retry_schedule.split(",") if part.strip())
        except ValueError as exc:
            raise ValueError("RETRY_SCHEDULE must be comma-separated seconds, e.g. 5,30,120") from exc
        if not delays or any(delay <= 0 for delay in delays):
            raise ValueError("RETRY_SCHEDULE must list at least one positive delay")
        return delays

    @cached_property
    def env_custom_fields(self) -> dict[str, str]:
        """Rankr custom field key -> GHL field id from CUSTOM_FIELD_MAP (the configuration file may add
        more: ``app.automation.config.field_maps``)."""
        return _pairs(self.custom_field_map, "CUSTOM_FIELD_MAP")

    @cached_property
    def env_users(self) -> dict[str, str]:
        """Rankr user id -> GHL user id from USER_MAP (the configuration file may add more)."""
        return _pairs(self.user_map, "USER_MAP")

    @property
    def connection_seed(self) -> ConnectionSeed | None:
        """The connection to create at start-up, if the settings describe one."""
        if self.ghl_location_id and self.rankr_account_id and self.ghl_token and self.rankr_credentials:
            return ConnectionSeed(self.rankr_account_id, self.ghl_location_id)
        if self.sandbox_mode:
            return ConnectionSeed(
                self.rankr_account_id or sandbox_keys.RANKR_ACCOUNT_ID,
                self.ghl_location_id or sandbox_keys.GHL_LOCATION_ID,
            )
        return None
