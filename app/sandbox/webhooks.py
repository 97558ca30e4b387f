"""Outbound webhook delivery, shared by both sandboxes: per-record order, retries, a delivery log.

Each side builds a ``Delivery`` (URL, exact body bytes, an ordering key) with a ``Signer`` that makes
the headers of each attempt and a ``RetryPolicy`` that says which answers are re-sent and when. The
dispatcher never sends inside the API request that caused the change: ``submit`` only queues, and a
background task per ordering key sends that key's deliveries one after another, so the events of one
record arrive in the order they were emitted even while one of them is being retried.

``submit`` is thread-safe (tests may change state from another thread than the server's loop); the
work itself runs on the loop that called ``start``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx

from app.kit.clock import Clock, format_instant

DeliveryState = Literal["pending", "delivered", "failed", "dropped", "disabled", "no_target"]

# Headers of one attempt, made fresh for each (Standard Webhooks re-signs with a new timestamp).
Signer = Callable[["Delivery"], Mapping[str, str]]

# Deliveries in flight at once, over as many connections. Each ordering key has a task of its own,
# and the HTTP client's pool matches every queued request against every connection whenever one
# frees: with a backlog of thousands of keys that work grows with their square and starves the
# sandbox's own API on the same loop. A bounded sender, as the products' own are, keeps it small,
# and so few that the matching stays cheap too.
MAX_SENDING = 8


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``delays[i]`` seconds pass before retry i+1; ``retry_on`` decides from the answer (None: no answer)."""

    delays: tuple[float, ...]
    retry_on: Callable[[int | None], bool]


@dataclass(slots=True)
class Attempt:
    """One try at sending a delivery: the status answered, or the transport error."""

    at: datetime
    status: int | None
    error: str | None
    duration_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "at": format_instant(self.at),
            "status": self.status,
            "error": self.error,
            "durationMs": round(self.duration_ms, 3),
        }


@dataclass(slots=True)
class Delivery:
    """One webhook event on its way to the service, and what happened to it."""

    id: str  # the event id the receiver deduplicates on (GHL webhookId, Rankr webhook-id)
    source: str  # "ghl" or "rankr"
    event_type: str
    record_key: str  # deliveries with the same key are sent in submission order
    record_id: str
    url: str | None
    body: bytes
    created_at: datetime
    state: DeliveryState = "pending"
    attempts: list[Attempt] = field(default_factory=list)

    def as_json(self, *, with_body: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "type": self.event_type,
            "recordKey": self.record_key,
            "recordId": self.record_id,
            "url": self.url,
            "createdAt": format_instant(self.created_at),
            "state": self.state,
            "attempts": [attempt.as_json() for attempt in self.attempts],
        }
        if with_body:
            data["body"] = self.body.decode()
        return data


@dataclass(slots=True)
class _QueuedDelivery:
    delivery: Delivery
    signer: Signer
    policy: RetryPolicy


class WebhookDispatcher:
    """Queues deliveries per ordering key and sends them from background tasks on the started loop."""

    def __init__(self, clock: Clock, timeout_seconds: float, history_size: int) -> None:
        self._clock = clock
        self.timeout_seconds = timeout_seconds
        self._history: deque[Delivery] = deque(maxlen=history_size)
        self._queues: dict[str, deque[_QueuedDelivery]] = {}
        self._active: set[str] = set()
        self._pending: dict[str, int] = {}  # per source: queued or in flight
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending: asyncio.Semaphore | None = None

    # -- life cycle ---------------------------------------------------------------------------------

    async def start(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        """Start sending, through ``transport`` instead of the network when given."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._sending = asyncio.Semaphore(MAX_SENDING)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_seconds),
            limits=httpx.Limits(max_connections=MAX_SENDING, max_keepalive_connections=MAX_SENDING),
            transport=transport,
        )
        with self._lock:
            waiting = list(self._queues)
        for key in waiting:
            self._start_sending(key)

    async def stop(self) -> None:
        """Cancel sending; deliveries not yet sent stay ``pending`` in the log."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
        self._client = None
        self._loop = None
        with self._lock:
            self._active.clear()

    # -- queueing -----------------------------------------------------------------------------------

    def submit(self, delivery: Delivery, signer: Signer, policy: RetryPolicy) -> None:
        """Queue ``delivery`` behind earlier ones with the same ``record_key``."""
        with self._lock:
            self._history.append(delivery)
            self._queues.setdefault(delivery.record_key, deque()).append(
                _QueuedDelivery(delivery, signer, policy)
            )
            self._pending[delivery.source] = self._pending.get(delivery.source, 0) + 1
            loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._start_sending, delivery.record_key)

    def record_unsent(self, delivery: Delivery, state: DeliveryState) -> None:
        """Log a delivery that will never be sent (dropped on purpose, delivery off, no target)."""
        delivery.state = state
        with self._lock:
            self._history.append(delivery)

    def pending(self, source: str | None = None) -> int:
        with self._lock:
            if source is None:
                return sum(self._pending.values())
            return self._pending.get(source, 0)

    def deliveries(self, source: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self._history if source is None or d.source == source]

    def clear_history(self, source: str | None = None) -> None:
        with self._lock:
            kept = [d for d in self._history if source is not None and d.source != source]
            self._history.clear()
            self._history.extend(kept)

    async def drain(self, seconds: float = 10.0, source: str | None = None) -> None:
        """Wait until every queued delivery (of ``source``) was delivered or given up.

        Raises TimeoutError when some are still pending after ``seconds``, or at once when deliveries
        are queued but the dispatcher was never started (they could never drain).
        """
        deadline = time.monotonic() + seconds
        while self.pending(source):
            if self._loop is None:
                raise TimeoutError("webhook delivery is not started; call Sandbox.start() first")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.pending(source)} webhook deliveries still pending")
            await asyncio.sleep(0.005)

    async def send_queued(self) -> None:
        """Send every queued delivery (and those they cause) now, on this loop, and return once each
        was delivered or given up: for callers that drive the loop themselves, with no waiting by time."""
        while True:
            with self._lock:
                keys = [key for key, queue in self._queues.items() if queue]
            for key in keys:
                self._start_sending(key)
            if not self._tasks:
                return
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- sending ------------------------------------------------------------------------------------

    def _start_sending(self, key: str) -> None:
        if self._loop is None:
            return
        with self._lock:
            if key in self._active or not self._queues.get(key):
                return
            self._active.add(key)
        task = self._loop.create_task(self._run_key(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_key(self, key: str) -> None:
        try:
            while True:
                with self._lock:
                    queue = self._queues.get(key)
                    if not queue:
                        self._queues.pop(key, None)
                        self._active.discard(key)
                        return
                    job = queue[0]
                try:
                    await self._deliver(job)
                finally:
                    with self._lock:
                        queue.popleft()
                        source = job.delivery.source
                        self._pending[source] = self._pending.get(source, 1) - 1
        except asyncio.CancelledError:
            with self._lock:
                self._active.discard(key)
            raise

    async def _deliver(self, job: _QueuedDelivery) -> None:
        delivery = job.delivery
        client, sending = self._client, self._sending
        if client is None or sending is None or delivery.url is None:
            delivery.state = "failed"
            return
        retries = iter(job.policy.delays)
        while True:
            started = time.monotonic()
            at = self._clock()
            status: int | None = None
            error: str | None = None
            try:
                async with sending:
                    response = await client.post(
                        delivery.url, content=delivery.body, headers=job.signer(delivery)
                    )
                status = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            delivery.attempts.append(Attempt(at, status, error, (time.monotonic() - started) * 1000))
            if status is not None and 200 <= status < 300:
                delivery.state = "delivered"
                return
            delay = next(retries, None) if job.policy.retry_on(status) else None
            if delay is None:
                delivery.state = "failed"
                return
            await asyncio.sleep(delay)
