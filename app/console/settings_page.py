"""The console's settings page: the configuration in force as YAML, its history, and a roll-back."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.admin import CONSOLE_ROOT
from app.automation.config import SyncConfig, sync_config, to_yaml
from app.config import Settings
from app.console.pages import Pages, checked_form, go
from app.db import autocommit, unit_of_work
from app.settings_store import service as settings_store

WHO = "console (admin)"


def read_only_reason(settings: Settings) -> str | None:
    """Why the console cannot change the settings, or None when it can."""
    if settings.config_file is None:
        return None
    return (
        f"CONFIG_FILE is set ({settings.config_file}): the service reads its settings from that file, "
        "so they are shown here read-only. Change the file (or unset CONFIG_FILE and load it with "
        "'rankr-ghl-sync config import') to change them."
    )


async def config_in_force(request: Request) -> SyncConfig:
    """The configuration the sync uses: CONFIG_FILE's, or the newest stored version."""
    settings: Settings = request.app.state.settings
    if settings.config_file is not None:
        return sync_config(settings)
    async with autocommit(request.app.state.sessions) as session:
        return await settings_store.current_config(session)


async def save_config(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, config: SyncConfig, now: datetime
) -> int | None:
    """Store ``config`` as the newest version and use it in this process at once; its id, or None
    when nothing changed."""
    async with unit_of_work(sessions) as session:
        saved = await settings_store.save(session, config, WHO, now)
    await settings_store.refresh(sessions, settings)
    return None if saved is None else saved.id


def settings_router(pages: Pages) -> APIRouter:
    router = APIRouter(prefix=CONSOLE_ROOT, include_in_schema=False)

    @router.get("/settings")
    async def settings_page(request: Request) -> HTMLResponse:
        settings: Settings = request.app.state.settings
        async with autocommit(request.app.state.sessions) as session:
            versions = await settings_store.history(session, limit=50)
        return pages.render(
            request,
            "settings.html",
            "Settings",
            read_only=read_only_reason(settings),
            yaml=to_yaml(await config_in_force(request)),
            versions=versions,
        )

    @router.post("/settings/roll-back")
    async def roll_back(request: Request) -> RedirectResponse:
        await checked_form(request)
        settings: Settings = request.app.state.settings
        reason = read_only_reason(settings)
        if reason is not None:
            return go("/settings", error=reason)
        try:
            async with unit_of_work(request.app.state.sessions) as session:
                restored = await settings_store.roll_back(session, WHO, request.app.state.clock())
        except settings_store.NothingToRollBack as exc:
            return go("/settings", error=f"Nothing to roll back: {exc}.")
        await settings_store.refresh(request.app.state.sessions, settings)
        return go("/settings", msg=f"Rolled back: version {restored.id} is in force ({restored.summary}).")

    return router
