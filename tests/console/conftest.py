"""The console in process: the app with its sandboxes over httpx.ASGITransport, and a browser-like
client that keeps cookies, reads each form's CSRF token and follows nothing by itself."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.inprocess import SERVICE_URL, InProcessService, inprocess_service

TOKEN = "s3cret-console-token"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """A person's browser on the console: cookies kept, forms posted with the page's CSRF token."""

    def __init__(self, service: InProcessService, base: str = SERVICE_URL) -> None:
        self.service = service
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url=base)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, **kwargs)

    async def csrf(self, page: str = "/admin/console/sign-in") -> str:
        answer = await self.get(page)
        found = CSRF.search(answer.text)
        assert found is not None, answer.text
        return found.group(1)

    async def post(
        self, path: str, form: dict[str, str] | None = None, *, page: str | None = None
    ) -> httpx.Response:
        """Post a form as the page ``page`` (default: the console's home) would, CSRF token included."""
        token = await self.csrf(page or ("/admin/console/" if self.signed_in else "/admin/console/sign-in"))
        return await self.http.post(path, data={"csrf": token, **(form or {})})

    @property
    def signed_in(self) -> bool:
        return "rankr_ghl_sync_session" in self.http.cookies

    async def sign_in(self, token: str = TOKEN) -> httpx.Response:
        return await self.post("/admin/console/sign-in", {"token": token, "next": "/admin/console/"})

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def console(behaviour_database_url: str) -> AsyncIterator[InProcessService]:
    async with inprocess_service(behaviour_database_url, admin_token=TOKEN) as service:
        yield service


@pytest.fixture
async def browser(console: InProcessService) -> AsyncIterator[Browser]:
    person = Browser(console)
    yield person
    await person.aclose()


@pytest.fixture
async def signed_in(browser: Browser) -> Browser:
    answer = await browser.sign_in()
    assert answer.status_code == 303, answer.text
    return browser
