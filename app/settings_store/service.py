"""Saving, reading and rolling back the stored configuration; the caller's session commits.

``refresh`` makes the newest stored version the one this process's ``sync_config`` answers; the
service calls it at start-up and the worker before it claims, so a save in the console reaches the
sync within one claim round.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.automation.config import SyncConfig, document, stored_version, use_stored
from app.config import Settings
from app.db import autocommit
from app.settings_store.models import SettingsVersion


class NothingToRollBack(Exception):
    """There is no version before the current one."""


async def current(session: AsyncSession) -> SettingsVersion | None:
    found = await session.execute(select(SettingsVersion).order_by(SettingsVersion.id.desc()).limit(1))
    return found.scalar_one_or_none()


async def history(session: AsyncSession, limit: int = 20) -> Sequence[SettingsVersion]:
    """The newest versions first."""
    found = await session.execute(select(SettingsVersion).order_by(SettingsVersion.id.desc()).limit(limit))
    return found.scalars().all()


async def current_config(session: AsyncSession) -> SyncConfig:
    version = await current(session)
    return SyncConfig() if version is None else SyncConfig.model_validate(version.document)


async def save(session: AsyncSession, config: SyncConfig, who: str, now: datetime) -> SettingsVersion | None:
    """Store ``config`` as the newest version; None (nothing stored) when it equals the current one."""
    before = await current(session)
    new = document(config)
    old = before.document if before is not None else document(SyncConfig())
    changed = changed_paths(old, new)
    if before is not None and not changed:
        return None
    version = SettingsVersion(document=new, changed_by=who, changed_at=now, summary=", ".join(changed) or "-")
    session.add(version)
    await session.flush()
    return version


async def roll_back(session: AsyncSession, who: str, now: datetime) -> SettingsVersion:
    """Save the version before the current one again (the history keeps both)."""
    newest = (await history(session, limit=2))[:2]
    if len(newest) < 2:
        raise NothingToRollBack("there is no earlier version to go back to")
    current_version, previous = newest
    restored = SettingsVersion(
        document=previous.document,
        changed_by=who,
        changed_at=now,
        summary=f"rolled back to version {previous.id}: "
        + (", ".join(changed_paths(current_version.document, previous.document)) or "-"),
    )
    session.add(restored)
    await session.flush()
    return restored


async def refresh(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> bool:
    """Use the newest stored version when it is not the one in use; True when the one in use changed.
    With CONFIG_FILE set the file is the configuration and nothing is read.

    The worker calls this before every claim, so it reads only the newest version's id and time
    (bench/settings_refresh.py) and its document only when those changed. The time is part of the
    version's name because a database emptied and filled again (tests) reuses ids.
    """
    if settings.config_file is not None:
        return False
    async with autocommit(sessions) as session:
        return await refresh_in(session, settings)


async def refresh_in(session: AsyncSession, settings: Settings) -> bool:
    """``refresh`` in a session the caller holds (the worker's claim transaction)."""
    if settings.config_file is not None:
        return False
    newest = (await session.execute(_NEWEST)).first()
    version = "none" if newest is None else f"{newest.id}@{newest.changed_at.isoformat()}"
    in_use = stored_version(settings)
    if version == in_use:
        return False
    stored = None if newest is None else await session.get(SettingsVersion, newest.id)
    config = SyncConfig() if stored is None else SyncConfig.model_validate(stored.document)
    use_stored(settings, version, config)
    return in_use is not None or stored is not None


_NEWEST = select(SettingsVersion.id, SettingsVersion.changed_at).order_by(SettingsVersion.id.desc()).limit(1)


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted paths whose values differ between two documents (lists compared whole; a part
    absent on one side counts as empty there)."""
    if isinstance(old, dict) or isinstance(new, dict):
        old = old if isinstance(old, dict) else {}
        new = new if isinstance(new, dict) else {}
        paths: list[str] = []
        for key in sorted(old.keys() | new.keys(), key=str):
            paths += changed_paths(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return paths
    return [] if old == new else [prefix or "(all)"]
