"""The log of API requests a sandbox answered, for tests and benchmarks (in process and over HTTP)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.kit.clock import format_instant

READ_ONLY_POSTS = frozenset({"/contacts/search"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One API request: its place in the log, what was asked, what was answered and when."""

    seq: int
    method: str
    path: str  # relative to the sandbox's API root, e.g. "/contacts/abc" (query string excluded)
    route: str | None  # the matched route template, e.g. "/contacts/{contactId}"; None when unmatched
    status: int
    at: datetime
    duration_ms: float

    @property
    def is_write(self) -> bool:
        # GHL's contact search is a POST that changes nothing.
        return self.method in WRITE_METHODS and self.path not in READ_ONLY_POSTS

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "status": self.status,
            "at": format_instant(self.at),
            "durationMs": round(self.duration_ms, 3),
            "write": self.is_write,
        }


class RequestLog:
    """Append-only, bounded, thread-safe; ``mark()`` + ``since(mark)`` select what came after a point."""

    def __init__(self, max_size: int) -> None:
        self._entries: deque[RecordedRequest] = deque(maxlen=max_size)
        self._next_seq = 1
        self._lock = threading.Lock()

    def record(
        self, method: str, path: str, route: str | None, status: int, at: datetime, duration_ms: float
    ) -> RecordedRequest:
        with self._lock:
            entry = RecordedRequest(self._next_seq, method, path, route, status, at, duration_ms)
            self._next_seq += 1
            self._entries.append(entry)
            return entry

    def mark(self) -> int:
        """The sequence number the next request will get; pass it to ``since`` or ``writes_since``."""
        with self._lock:
            return self._next_seq

    def entries(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._entries)

    def since(self, mark: int) -> list[RecordedRequest]:
        with self._lock:
            return [entry for entry in self._entries if entry.seq >= mark]

    def writes_since(self, mark: int) -> int:
        """How many POST/PUT/PATCH/DELETE requests were answered since ``mark`` (any status)."""
        return sum(1 for entry in self.since(mark) if entry.is_write)

    def clear(self) -> None:
        """Forget the entries; sequence numbers keep growing so older marks stay meaningful."""
        with self._lock:
            self._entries.clear()
