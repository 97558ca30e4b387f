"""The single-use secrets of the GHL install flow: one-time install links and OAuth states.

A secret is stored by its SHA-256 only, so the table leaks nothing an install could be started or
finished with. Using one is one conditional ``UPDATE`` (``used_at IS NULL`` and not expired), so two
callbacks racing with the same state cannot both pass, on any number of processes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.models import InstallState, InstallStateKind


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def issue(
    session: AsyncSession, kind: InstallStateKind, rankr_account_id: str, now: datetime, ttl: timedelta
) -> str:
    """A new secret of ``kind`` for ``rankr_account_id``, valid for ``ttl``; returns the secret."""
    secret = new_secret()
    session.add(
        InstallState(
            kind=kind,
            digest=digest(secret),
            rankr_account_id=rankr_account_id,
            created_at=now,
            expires_at=now + ttl,
            refusals=0,
        )
    )
    await session.flush()
    return secret


async def _refuse(session: AsyncSession, row_id: int, reason: str, now: datetime) -> str:
    await session.execute(
        update(InstallState)
        .where(InstallState.id == row_id)
        .values(refusals=InstallState.refusals + 1, refused_at=now, refusal=reason[:200])
    )
    return reason


@dataclass(frozen=True, slots=True)
class SecretUse:
    """The Rankr account a secret was for, or why it was refused (exactly one is set)."""

    rankr_account_id: str | None = None
    refusal: str | None = None


async def use(
    session: AsyncSession,
    kind: InstallStateKind,
    secret: str,
    now: datetime,
    *,
    browser_secret: str | None = None,
    check_browser: bool = False,
) -> SecretUse:
    """Use ``secret`` once. With ``check_browser``, the browser must also hold it (its install cookie),
    so a callback started in another browser is refused. A refusal of a known secret is counted."""
    row = (
        await session.execute(
            select(InstallState).where(InstallState.digest == digest(secret), InstallState.kind == kind)
        )
    ).scalar_one_or_none()
    if row is None:
        return SecretUse(refusal="the install link is invalid or expired; start the install again")
    used_again = (
        "this install link was already used; ask for a new one"
        if kind == InstallStateKind.LINK
        else "this install callback was already used (a replay); start the install again"
    )
    if row.used_at is not None:
        reason = used_again
    elif row.expires_at <= now:
        reason = "the install took longer than allowed; start it again"
    elif check_browser and not (browser_secret and hmac.compare_digest(browser_secret, secret)):
        reason = "the install was finished in another browser than the one that started it; start it again"
    else:
        taken = await session.execute(
            update(InstallState)
            .where(InstallState.id == row.id, InstallState.used_at.is_(None))
            .values(used_at=now)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return SecretUse(rankr_account_id=row.rankr_account_id)
        reason = used_again  # another callback took it a moment ago
    return SecretUse(refusal=await _refuse(session, row.id, reason, now))


@dataclass(frozen=True, slots=True)
class Refusals:
    """The install attempts refused so far, and the latest one."""

    count: int
    latest_at: datetime | None
    latest_reason: str | None
    latest_rankr_account_id: str | None


async def refusals(session: AsyncSession) -> Refusals:
    count = (await session.execute(select(func.coalesce(func.sum(InstallState.refusals), 0)))).scalar_one()
    latest = (
        await session.execute(
            select(InstallState)
            .where(InstallState.refused_at.is_not(None))
            .order_by(InstallState.refused_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if latest is None:
        return Refusals(int(count), None, None, None)
    return Refusals(int(count), latest.refused_at, latest.refusal, latest.rankr_account_id)
