"""SQL of GHL credentials: read, store, rotate, lease for refresh, mark for re-authorisation. Never commits.

Token columns hold ciphertext (``app.kit.crypto.TokenCipher``); this module never sees plain tokens
except through the cipher it is handed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.models import CredentialKind, CredentialState, GhlCredential
from app.kit.crypto import TokenCipher


async def get(session: AsyncSession, credential_id: int) -> GhlCredential | None:
    return await session.get(GhlCredential, credential_id, populate_existing=True)


async def for_connection(session: AsyncSession, connection_id: int) -> GhlCredential | None:
    statement = select(GhlCredential).where(GhlCredential.connection_id == connection_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def agency(session: AsyncSession, company_id: str) -> GhlCredential | None:
    statement = select(GhlCredential).where(
        GhlCredential.kind == CredentialKind.AGENCY, GhlCredential.company_id == company_id
    )
    return (await session.execute(statement)).scalars().first()


async def all_credentials(session: AsyncSession) -> Sequence[GhlCredential]:
    return (await session.execute(select(GhlCredential).order_by(GhlCredential.id))).scalars().all()


async def put(
    session: AsyncSession,
    cipher: TokenCipher,
    *,
    kind: CredentialKind,
    access_token: str,
    now: datetime,
    connection_id: int | None = None,
    company_id: str | None = None,
    refresh_token: str | None = None,
    expires_at: datetime | None = None,
    scope: str | None = None,
) -> GhlCredential:
    """Store fresh credentials for a connection (or an agency), replacing what it had."""
    if connection_id is not None:
        row = await for_connection(session, connection_id)
    else:
        row = await agency(session, company_id or "")
    if row is None:
        row = GhlCredential(connection_id=connection_id, kind=kind, created_at=now, generation=0)
        session.add(row)
    row.kind = kind
    row.company_id = company_id
    row.state = CredentialState.OK
    row.access_token = cipher.encrypt(access_token)
    row.refresh_token = cipher.encrypt(refresh_token) if refresh_token is not None else None
    row.expires_at = expires_at
    row.scope = scope
    row.generation = (row.generation or 0) + 1
    row.lease_holder = None
    row.lease_until = None
    row.refreshed_at = now
    row.updated_at = now
    await session.flush()
    return row


async def take_lease(
    session: AsyncSession, credential_id: int, holder: str, now: datetime, until: datetime
) -> bool:
    """Become the one refresher of this credential, unless another holds an unexpired lease."""
    result = await session.execute(
        update(GhlCredential)
        .where(
            GhlCredential.id == credential_id,
            or_(GhlCredential.lease_until.is_(None), GhlCredential.lease_until < now),
        )
        .values(lease_holder=holder, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_lease(session: AsyncSession, credential_id: int, holder: str) -> None:
    await session.execute(
        update(GhlCredential)
        .where(GhlCredential.id == credential_id, GhlCredential.lease_holder == holder)
        .values(lease_holder=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def store_rotation(
    session: AsyncSession,
    cipher: TokenCipher,
    credential_id: int,
    *,
    access_token: str,
    refresh_token: str | None,
    expires_at: datetime | None,
    now: datetime,
) -> None:
    """Save the tokens a refresh returned (the old refresh token is spent) and end the lease."""
    values = {
        "access_token": cipher.encrypt(access_token),
        "expires_at": expires_at,
        "generation": GhlCredential.generation + 1,
        "state": CredentialState.OK,
        "lease_holder": None,
        "lease_until": None,
        "refreshed_at": now,
        "updated_at": now,
    }
    if refresh_token is not None:
        values["refresh_token"] = cipher.encrypt(refresh_token)
    await session.execute(
        update(GhlCredential)
        .where(GhlCredential.id == credential_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def mark_needs_reauth(
    session: AsyncSession, credential_id: int, generation: int, now: datetime
) -> bool:
    """Mark the credential unusable, unless it was rotated since ``generation`` (then the refusal was
    about a refresh token that is no longer the current one)."""
    result = await session.execute(
        update(GhlCredential)
        .where(GhlCredential.id == credential_id, GhlCredential.generation == generation)
        .values(state=CredentialState.NEEDS_REAUTH, lease_holder=None, lease_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def rekey(row: GhlCredential, cipher: TokenCipher) -> bool:
    """Re-encrypt the row's tokens with the newest key; False when they already were."""
    if cipher.is_current(row.access_token) and (
        row.refresh_token is None or cipher.is_current(row.refresh_token)
    ):
        return False
    row.access_token = cipher.rotate(row.access_token)
    if row.refresh_token is not None:
        row.refresh_token = cipher.rotate(row.refresh_token)
    return True
