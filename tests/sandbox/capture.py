"""A stand-in for the service's webhook endpoints: records every delivery, answers as scripted."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response


@dataclass(frozen=True)
class Received:
    """One webhook delivery attempt as the receiver saw it."""

    source: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class Capture:
    """``POST /webhooks/{ghl,rankr}``; ``script[source]`` holds the statuses to answer next (then 200)."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.url = ""
        self._received: list[Received] = []
        self.script: dict[str, deque[int]] = {"ghl": deque(), "rankr": deque()}
        self._lock = threading.Lock()

        @self.app.post("/webhooks/{source}")
        async def receive(source: str, request: Request) -> Response:
            body = await request.body()
            with self._lock:
                queue = self.script.setdefault(source, deque())
                status = queue.popleft() if queue else 200
                self._received.append(Received(source, dict(request.headers), body, status, time.monotonic()))
            return Response(status_code=status)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            for queue in self.script.values():
                queue.clear()

    def received(self, source: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if source is None or r.source == source]

    def accepted(self, source: str) -> list[dict[str, Any]]:
        """Bodies of the attempts answered 2xx, in arrival order."""
        return [r.json() for r in self.received(source) if 200 <= r.status < 300]
