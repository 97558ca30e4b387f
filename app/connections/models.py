"""Connections (one Rankr account <-> one GHL location) and the upstream budgets seen for each."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field
from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import MAX_INTEGER_KEY, Base, UTCDateTime


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class Connection(Base):
    __tablename__ = "connections"
    __table_args__ = (CheckConstraint("status IN ('active', 'disabled')", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    rankr_account_id: Mapped[str] = mapped_column(String(255), unique=True)
    ghl_location_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=ConnectionStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_synced_to_ghl_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_synced_to_rankr_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


# A connection id as requests name one (path, form, JSON): anything else is refused with 422.
ConnectionId = Annotated[int, Field(ge=1, le=MAX_INTEGER_KEY)]


class RateBudget(Base):
    """One connection's budget with one upstream (GHL: per location; Rankr: per account).

    Every worker process paces its requests through this row (``app.connections.budget``): the
    schedule (``next_slot``), today's count, and the latest rate-limit headers the upstream sent.
    """

    __tablename__ = "rate_budgets"
    __table_args__ = (UniqueConstraint("connection_id", "upstream"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    upstream: Mapped[str] = mapped_column(String(16))
    # The earliest time the next request may start, in Unix seconds: a number rather than a
    # timestamp so a reservation's arithmetic runs inside one UPDATE on both databases.
    next_slot: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # Requests reserved on ``day`` (UTC, YYYY-MM-DD), against the daily limit.
    day: Mapped[str | None] = mapped_column(String(10), default=None)
    day_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What the upstream's rate-limit headers said last (None until an answer was seen).
    limit: Mapped[int | None] = mapped_column(Integer, default=None)
    remaining: Mapped[int | None] = mapped_column(Integer, default=None)
    window_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    daily_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    daily_remaining: Mapped[int | None] = mapped_column(Integer, default=None)
    observed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class CredentialKind(StrEnum):
    PRIVATE = "private"  # a Private Integration token (static bearer)
    OAUTH = "oauth"  # a marketplace-app location token with its refresh token
    AGENCY_LOCATION = "agency_location"  # a location token minted from an agency token (no refresh token)
    AGENCY = "agency"  # an agency (company) token: mints location tokens; no connection of its own


class CredentialState(StrEnum):
    OK = "ok"
    NEEDS_REAUTH = "needs_reauth"  # GHL refused the refresh (invalid_grant): install the app again


class GhlCredential(Base):
    """How the service authenticates to GHL for one connection (or, kind ``agency``, for one company).

    Tokens are stored encrypted (``TOKEN_ENCRYPTION_KEY``). ``generation`` grows with every rotation,
    so a worker can tell whether the tokens it used are still the newest. ``lease_holder`` /
    ``lease_until`` make one refresh at a time per credential across all processes.
    """

    __tablename__ = "ghl_credentials"
    __table_args__ = (
        CheckConstraint("kind IN ('private', 'oauth', 'agency_location', 'agency')", name="kind"),
        CheckConstraint("state IN ('ok', 'needs_reauth')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), unique=True, default=None
    )
    company_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=CredentialState.OK)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text, default=None)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    scope: Mapped[str | None] = mapped_column(Text, default=None)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    lease_holder: Mapped[str | None] = mapped_column(String(96), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InstallStateKind(StrEnum):
    LINK = "link"  # a one-time install link the operator made for a Rankr account
    STATE = "state"  # an install in progress: the OAuth ``state`` GHL hands back to the callback


class InstallState(Base):
    """A secret of the GHL install flow, by its SHA-256 (the secret itself is only in the URL and cookie).

    Each is used once (``used_at``), before ``expires_at``; a callback refused for it (a replay,
    another browser, too late) is counted here so ``/status`` can show it.
    """

    __tablename__ = "install_states"
    __table_args__ = (CheckConstraint("kind IN ('link', 'state')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    rankr_account_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    refusals: Mapped[int] = mapped_column(Integer, default=0)
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    refusal: Mapped[str | None] = mapped_column(String(200), default=None)


class ConnectionVerification(Base):
    """The latest check of a connection against the real APIs (``app.connections.verify``).

    ``verified`` is true only when every check passed. A problem carries a stable ``problem_code``,
    the plain-language reason and what to do about it; no token or personal data is stored here.
    """

    __tablename__ = "connection_verifications"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    verified: Mapped[bool] = mapped_column(Boolean)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    problem_code: Mapped[str | None] = mapped_column(String(64), default=None)
    problem_reason: Mapped[str | None] = mapped_column(Text, default=None)
    problem_fix: Mapped[str | None] = mapped_column(Text, default=None)
    location_name: Mapped[str | None] = mapped_column(String(255), default=None)
