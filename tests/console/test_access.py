"""Nothing in the console is reachable without the admin's session; the session cookie is HttpOnly,
SameSite=Strict, Secure over HTTPS and expiring; every form needs this browser's CSRF token."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from app.admin import CONSOLE_OPEN, CONSOLE_ROOT
from app.console.pages import Pages
from app.console.routes import console_routers
from tests.console.conftest import TOKEN, Browser
from tests.support.inprocess import InProcessService

pytestmark = pytest.mark.anyio


def console_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the console but its sign-in and static files, path parameters 1."""
    found = []
    for router in console_routers(Pages()):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            assert route.path == "/admin/" or route.path.startswith(CONSOLE_ROOT + "/"), route.path
            if route.path.startswith(CONSOLE_OPEN):
                continue
            path = re.sub(r"\{[^}]+\}", "1", route.path)
            found += [(method, path) for method in sorted(route.methods)]
    return found


async def test_every_console_route_answers_a_redirect_or_401_without_a_session(
    console: InProcessService, browser: Browser
) -> None:
    routes = console_routes()
    assert len(routes) >= 10, routes
    for method, path in routes:
        answer = await browser.http.request(method, path)
        if method == "GET":
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].startswith("/admin/console/sign-in?next="), path
        else:
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"


async def test_a_bearer_token_or_a_session_opens_the_console(
    console: InProcessService, browser: Browser
) -> None:
    bearer = await browser.get("/admin/console/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200
    await browser.sign_in()
    page = await browser.get("/admin/console/")
    assert page.status_code == 200
    assert "Connections" in page.text


async def test_sign_in_with_a_wrong_token_is_refused_and_starts_no_session(browser: Browser) -> None:
    answer = await browser.sign_in("wrong")
    assert answer.status_code == 401
    assert "That is not the admin token." in answer.text
    assert not browser.signed_in
    assert (await browser.get("/admin/console/")).status_code == 303


async def test_the_session_cookie_is_httponly_strict_expiring_and_secure_over_https(
    console: InProcessService,
) -> None:
    for base, secure in (("http://service.test", False), ("https://service.test", True)):
        person = Browser(console, base)
        answer = await person.sign_in()
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "max-age=28800" in cookie
        assert ("; secure" in cookie) is secure, cookie
        await person.aclose()


async def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_the_console(browser: Browser) -> None:
    asked = await browser.get("/admin/console/settings")
    assert asked.headers["location"] == "/admin/console/sign-in?next=%2Fadmin%2Fconsole%2Fsettings"
    back = await browser.post("/admin/console/sign-in", {"token": TOKEN, "next": "/admin/console/settings"})
    assert back.headers["location"] == "/admin/console/settings"
    await browser.http.post("/admin/console/sign-out", data={"csrf": await browser.csrf("/admin/console/")})
    away = await browser.post("/admin/console/sign-in", {"token": TOKEN, "next": "https://evil.example/"})
    assert away.headers["location"] == "/admin/console/"


async def test_a_form_without_this_browsers_csrf_token_is_refused_and_changes_nothing(
    console: InProcessService, signed_in: Browser
) -> None:
    for token in ("", "0" * 64):
        answer = await signed_in.http.post("/admin/console/connections/1/disable", data={"csrf": token})
        assert answer.status_code == 403
        assert "CSRF" in answer.json()["detail"]
    [state] = await console.query("SELECT status FROM connections WHERE id = 1")
    assert state["status"] == "active"
    other = Browser(console)
    await other.sign_in()
    foreign = await signed_in.http.post(
        "/admin/console/connections/1/disable", data={"csrf": await other.csrf("/admin/console/")}
    )
    assert foreign.status_code == 403
    await other.aclose()


async def test_sign_out_ends_the_session(signed_in: Browser) -> None:
    answer = await signed_in.post("/admin/console/sign-out")
    assert answer.status_code == 303
    assert not signed_in.signed_in
    assert (await signed_in.get("/admin/console/")).status_code == 303


async def test_the_admin_root_leads_to_the_console(signed_in: Browser) -> None:
    answer = await signed_in.get("/admin/")
    assert (answer.status_code, answer.headers["location"]) == (303, "/admin/console/")


async def test_the_style_sheet_is_served_to_everyone(browser: Browser) -> None:
    answer = await browser.get("/admin/console/static/console.css")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
