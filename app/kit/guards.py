"""What every request and answer goes through: bounds on what a request may make the service hold
in memory before anyone looked at it, and the security headers of every answer.

``BodyLimit`` refuses a body over its limit with 413 as it arrives: by its Content-Length at once,
or, when it is sent without one, as soon as the bytes read pass the limit. ``LimitedHttpTools`` is
uvicorn's httptools protocol with a limit on the request line and headers together (431), which
httptools alone does not have.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_HEADER_BYTES = 64 * 1024


def problem_bytes(status: int, title: str, detail: str) -> bytes:
    return json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()


async def send_problem(
    send: Send, status: int, title: str, detail: str, headers: Mapping[str, str] = {}
) -> None:
    """An RFC 9457 problem answer, sent straight on the ASGI channel (before any app code ran)."""
    body = problem_bytes(status, title, detail)
    raw = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    """The body passed its limit while the app was reading it (the 413 is already sent)."""


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes (``prefix_limits`` by path prefix) gets 413."""

    def __init__(self, app: ASGIApp, *, limit: int, prefix_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.prefix_limits = dict(prefix_limits or {})

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.prefix_limits.items():
            if path.startswith(prefix):
                return limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        detail = f"the body exceeds {limit} bytes"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_problem(send, 413, "Content Too Large", detail, {"Connection": "close"})
            return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not refused:
                    refused = True
                    if not started:
                        await send_problem(send, 413, "Content Too Large", detail, {"Connection": "close"})
                    raise _TooLarge
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out instead of whatever the app makes of the cut-off body
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            pass
        except Exception:
            if not refused:
                raise


class LimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering 431 and closing once a request's head (request line
    and headers) passes ``MAX_HEADER_BYTES`` without being complete; httptools would buffer it all."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
            body = problem_bytes(
                431,
                "Request Header Fields Too Large",
                f"the request line and headers exceed {MAX_HEADER_BYTES} bytes",
            )
            head = (
                "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                "content-type: application/problem+json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head.encode() + body)
            self.transport.close()


# Inline scripts and styles are the pages' own (no external asset is ever loaded); framing, plugins,
# foreign forms and <base> are refused outright.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = (
    (b"content-security-policy", PAGE_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    """ASGI middleware: ``nosniff`` on every answer; on HTML pages a content security policy, no
    framing and no referrer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                content_type = next(
                    (value for name, value in headers if name.lower() == b"content-type"), b""
                )
                headers.append((b"x-content-type-options", b"nosniff"))
                if content_type.startswith(b"text/html"):
                    headers.extend(PAGE_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
