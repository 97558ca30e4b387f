"""Prometheus metrics: what happens in this process (counters, histograms) and the backlog (from the DB).

Two kinds of figures, kept apart on purpose because the worker may run in other processes:

- **Per-process** counters and histograms (webhooks received, events processed, upstream requests,
  rate budget last seen) live in the default registry of the process that did the work. ``serve``
  exposes them on ``GET /metrics``; a separate ``rankr-ghl-sync worker`` serves its own on
  ``METRICS_PORT``. Prometheus sums them across processes.
- **Backlog** gauges (open and dead events, oldest open event's age, per connection) are read from
  the database at scrape time, so every API replica reports the same, complete figures whichever
  process did the work (alert on ``max`` across replicas, not ``sum``). One grouped query on the
  inbox's status index, restricted to open and dead rows, keeps a scrape cheap.

The hot path of the intake only increments a counter. The backlog gauges and ``GET /metrics`` are
in ``app.ops.scrape``; this module depends on nothing of the app, so any layer may count.
"""

from __future__ import annotations

import re
from functools import lru_cache

from prometheus_client import Counter, Gauge, Histogram

WEBHOOKS = Counter(
    "rankr_ghl_sync_webhooks_received",
    "Webhook deliveries received, by source, event type and outcome "
    "(accepted, duplicate, ignored, rejected_<status>)",
    ["source", "type", "outcome"],
)
EVENTS = Counter(
    "rankr_ghl_sync_events",
    "Stored events the worker ran, by source and outcome (processed, deferred, retried, dead)",
    ["source", "outcome"],
)
LATENCY = Histogram(
    "rankr_ghl_sync_event_processing_seconds",
    "Time the worker spent on one event, by source and outcome",
    ["source", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UPSTREAM = Counter(
    "rankr_ghl_sync_upstream_requests",
    "Requests sent to GHL and Rankr, by system, method, templated endpoint and HTTP status "
    "(or 'error' when no answer came)",
    ["system", "method", "endpoint", "status"],
)
BUDGET = Gauge(
    "rankr_ghl_sync_rate_budget_remaining",
    "Requests left in the upstream's current rate-limit window, as its latest answer said",
    ["system", "connection"],
)

# A path segment kept as it is: a lowercase word (``contacts``, ``upsert``) or an API version (``v1``).
_WORD = re.compile(r"[a-z][a-z_-]{0,30}|v\d{1,2}")
_UNKNOWN = "unknown"


def endpoint_template(path: str) -> str:
    """``/contacts/AbC123/tasks`` -> ``/contacts/{id}/tasks``: record ids never become label values."""
    return "/".join(part if not part or _WORD.fullmatch(part) else "{id}" for part in path.split("/"))


def webhook_received(source: str, type_: str | None, outcome: str) -> None:
    _webhooks(source, type_ or _UNKNOWN, outcome).inc()


# Every webhook counts once, on the intake's hot path: look each labelled child up once.
@lru_cache(maxsize=512)
def _webhooks(source: str, type_: str, outcome: str) -> Counter:
    return WEBHOOKS.labels(source, type_, outcome)


def event_finished(source: str, outcome: str, seconds: float) -> None:
    EVENTS.labels(source, outcome).inc()
    LATENCY.labels(source, outcome).observe(seconds)


def upstream_request(system: str, method: str, path: str, status: int | None) -> None:
    UPSTREAM.labels(system, method, endpoint_template(path), str(status) if status else "error").inc()


def budget_seen(system: str, connection_id: int, remaining: int | None) -> None:
    if remaining is not None:
        BUDGET.labels(system, str(connection_id)).set(remaining)
