"""Request bounds: bodies over their limit get 413 as they arrive, heads over 64 KiB get 431, and the
admin routes refuse a stranger before reading a byte of the body."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from app.kit.guards import MAX_HEADER_BYTES, BodyLimit
from tests.support.asgi import app_client
from tests.support.server import serve

pytestmark = pytest.mark.anyio


def echo_app(limit: int, prefix_limits: dict[str, int] | None = None) -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def echo(request: Request, path: str) -> dict[str, int]:
        return {"read": len(await request.body())}

    app.add_middleware(BodyLimit, limit=limit, prefix_limits=prefix_limits)
    return app


async def chunks(count: int, size: int, pulled: list[int]) -> AsyncIterator[bytes]:
    for _ in range(count):
        pulled.append(size)
        yield b"x" * size


async def post(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        return await http.post(path, **kwargs)


async def test_a_declared_length_over_the_limit_is_refused_before_anything_is_read() -> None:
    pulled: list[int] = []
    answer = await post(
        echo_app(100),
        "/x",
        content=chunks(3, 50, pulled),
        headers={"content-length": "150"},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "the body exceeds 100 bytes"
    assert pulled == []


async def test_a_body_sent_without_a_length_is_cut_off_where_it_passes_the_limit() -> None:
    pulled: list[int] = []
    answer = await post(echo_app(100), "/x", content=chunks(50, 40, pulled))
    assert answer.status_code == 413
    assert answer.json()["title"] == "Content Too Large"
    assert sum(pulled) <= 120  # stopped at the chunk that passed 100 bytes, not after all 2,000


async def test_bodies_within_their_limit_pass_and_prefixes_have_their_own() -> None:
    app = echo_app(100, {"/big/": 1000})
    assert (await post(app, "/x", content=b"y" * 100)).json() == {"read": 100}
    assert (await post(app, "/big/x", content=b"y" * 1000)).json() == {"read": 1000}
    assert (await post(app, "/big/x", content=b"y" * 1001)).status_code == 413
    assert (await post(app, "/x", content=b"y" * 101)).status_code == 413


@pytest.fixture
async def service(sqlite_url: str) -> AsyncIterator[Any]:
    async with app_client(sqlite_url, sandbox=True, admin_token="s3cret-admin") as (app, _):
        yield app


async def test_an_admin_route_refuses_a_stranger_without_reading_the_body(service: Any) -> None:
    pulled: list[int] = []
    answer = await post(service, "/admin/replay", content=chunks(1000, 100_000, pulled))
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.headers["content-type"] == "application/problem+json"
    assert pulled == []


async def test_the_admin_token_lets_the_body_through_within_the_operators_limit(service: Any) -> None:
    token = {"authorization": "Bearer s3cret-admin"}
    answer = await post(service, "/admin/replay", json={"all": True}, headers=token)
    assert answer.status_code == 200, answer.text
    too_big = await post(service, "/admin/replay", content=b" " * 300_000, headers=token)
    assert too_big.status_code == 413


async def test_webhooks_keep_their_one_mebibyte(service: Any) -> None:
    answer = await post(service, "/webhooks/rankr", content=b"{" + b" " * (1024 * 1024))
    assert answer.status_code == 413
    assert answer.json()["detail"] == "the body exceeds 1048576 bytes"


def raw_request(base: str, head: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.mark.e2e  # a real server: the limit is in uvicorn's protocol, under the ASGI app
def test_a_head_over_the_limit_gets_431_and_the_connection_closes() -> None:
    with serve(echo_app(100)) as base:
        # Sent whole and not ended, so the server has read all of it when it closes (a close with
        # unread bytes would reset the connection before the client reads the answer).
        huge = b"POST /x HTTP/1.1\r\nhost: t\r\nx-filler: " + b"a" * (MAX_HEADER_BYTES + 4096)
        answer = raw_request(base, huge)
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert b"application/problem+json" in answer
        # Keep-alive requests each get their own allowance.
        normal = (
            b"POST /x HTTP/1.1\r\nhost: t\r\nx-filler: " + b"b" * 40_000 + b"\r\ncontent-length: 3\r\n\r\nabc"
        )
        answer = raw_request(
            base, normal + normal.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nconnection: close\r\n")
        )
        assert answer.count(b"HTTP/1.1 200 OK") == 2


async def test_html_pages_carry_the_security_headers_and_json_answers_nosniff(service: Any) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service), base_url="http://t") as http:
        page = await http.get("/status", headers={"accept": "text/html"})
        sandbox_page = await http.get("/sandbox/ghl/ui")
        document = await http.get("/status")
    for html in (page, sandbox_page):
        assert html.headers["content-type"].startswith("text/html")
        policy = html.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'self'" in policy
        assert html.headers["x-frame-options"] == "DENY"
        assert html.headers["referrer-policy"] == "no-referrer"
        assert html.headers["x-content-type-options"] == "nosniff"
    assert document.headers["content-type"] == "application/json"
    assert document.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in document.headers


@pytest.mark.parametrize("access", ["admin", "off", None])
async def test_the_api_documentation_answers_as_api_docs_says(sqlite_url: str, access: str | None) -> None:
    production = {"sandbox": False, "admin_token": "s3cret-admin", "api_docs": access}
    async with app_client(sqlite_url, rankr_webhook_secrets="whsec_" + "A" * 32, **production) as (_, http):
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui.css"):
            stranger = await http.get(path)
            admin = await http.get(path, headers={"authorization": "Bearer s3cret-admin"})
            if access == "off":
                assert (stranger.status_code, admin.status_code) == (404, 404), path
            else:  # "admin", the default outside sandbox mode
                assert stranger.status_code == 401, path
                assert "sign in on /status" in stranger.json()["detail"]
                assert admin.status_code == 200, path
        if access != "off":
            await http.post("/status/login", data={"token": "s3cret-admin"})
            assert (await http.get("/openapi.json")).status_code == 200  # the browser's admin session
