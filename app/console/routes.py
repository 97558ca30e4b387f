"""The console's routers and static files, as the app factory installs them."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.admin import CONSOLE_ROOT
from app.console.actions import actions_router
from app.console.activity import activity_router
from app.console.connections import connections_router
from app.console.mapping import mapping_router
from app.console.pages import STATIC_DIR, Pages, sign_in_router
from app.console.settings_page import settings_router


def console_routers(pages: Pages) -> list[APIRouter]:
    """Every router of the console (their paths are whole: each has its prefix)."""
    root = APIRouter(include_in_schema=False)

    @root.get("/admin/")
    async def to_console() -> RedirectResponse:
        return RedirectResponse(f"{CONSOLE_ROOT}/", status_code=303)

    return [
        root,
        sign_in_router(pages),
        connections_router(pages),
        mapping_router(pages),
        actions_router(pages),
        activity_router(pages),
        settings_router(pages),
    ]


def install_console(app: FastAPI) -> None:
    """Serve the console under ``/admin/console/`` (``/admin/`` leads there)."""
    for router in console_routers(Pages()):
        app.include_router(router)
    app.mount(f"{CONSOLE_ROOT}/static", StaticFiles(directory=STATIC_DIR), name="console-static")
