"""The errors of rankr-ghl-sync: one hierarchy, documented here.

Hierarchy (what raises it, and what the worker does with it)::

    SyncError                      base of everything the sync raises on purpose
    ├── UpstreamError              an upstream API failed; carries upstream, status and its message
    │   ├── TransientUpstreamError transport error, timeout, 408, 429 or 5xx: retried (Retry-After honoured;
    │   │   │                      a 429 backs the connection off and counts no attempt)
    │   │   └── LeaseLost          a link's lease expired while its handler worked: the event runs again
    │   └── PermanentUpstreamError any other 4xx: the event goes dead with the upstream's message
    │       └── UpstreamNotFound   404 (or GHL's "not found" 400): the record is gone upstream
    ├── MappingError               a record cannot be mapped to the other side: dead
    ├── LinkConflictError          the matching record is already linked to another one: dead
    ├── UnroutableEvent            no active connection for the event's account or location: dead
    └── Deferred                   not a failure: the record is busy (a lease is held, or the echo of a
        │                          create in flight may be this event); the event runs again shortly
        └── OutOfBudget            the connection's budget with an upstream is spent for now (paced,
                                   or a 429's Retry-After): the event waits for it, uncounted

    JobError                       a backfill or reconciliation job (``app.backfill``) cannot go on
    ├── JobBusy                    another process holds the connection's job: 409, or try later
    │   └── BackfillUnfinished     a reconciliation while the backfill has not finished: it waits
    └── JobLost                    the job's lease was taken over (this process stalled longer than it)

    ProblemError                   raised by endpoints; rendered as RFC 9457 application/problem+json
                                   by ``app.problems``

The retry decision lives in one place: ``app.integrations.upstream.classify_status`` decides
transient vs permanent.
"""

from __future__ import annotations

from typing import Any


class SyncError(Exception):
    """Base of the errors the sync raises on purpose."""


class UpstreamError(SyncError):
    """An upstream API (``ghl`` or ``rankr``) could not be reached or answered with an error."""

    def __init__(
        self,
        upstream: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.upstream = upstream
        self.status = status
        self.message = message[:500]
        self.retry_after = retry_after
        self.body = body or {}
        where = f"{upstream} {status}" if status is not None else upstream
        super().__init__(f"{where}: {self.message}")


class TransientUpstreamError(UpstreamError):
    """Worth retrying later (transport error, timeout, 408, 429, 5xx)."""


class PermanentUpstreamError(UpstreamError):
    """Retrying cannot help (a 4xx other than 408 and 429)."""


class UpstreamNotFound(PermanentUpstreamError):
    """The record does not exist (any more) upstream."""


class MappingError(SyncError):
    """A record cannot be mapped to the other side."""


class LinkConflictError(SyncError):
    """The record matched on the other side is already linked to a different record."""


class UnroutableEvent(SyncError):
    """No active connection serves the event's Rankr account or GHL location."""


class Deferred(SyncError):
    """The record is busy; run the event again after ``delay`` seconds without counting an attempt."""

    def __init__(self, reason: str, delay: float = 0.5) -> None:
        self.reason = reason
        self.delay = delay
        super().__init__(reason)


class OutOfBudget(Deferred):
    """The connection's request budget with an upstream allows no request for ``delay`` seconds."""

    def __init__(self, budget: str, delay: float) -> None:
        super().__init__(f"the {budget} request budget is spent for {delay:.1f} s", delay=delay)
        self.budget = budget


class LeaseLost(TransientUpstreamError):
    """The link's lease expired while the handler worked; the event runs again."""

    def __init__(self) -> None:
        super().__init__("sync", "the link's lease expired before the result was saved")


class JobError(Exception):
    """A backfill or reconciliation job cannot go on."""


class JobBusy(JobError):
    """Another process holds the connection's job (backfill or reconciliation)."""


class BackfillUnfinished(JobBusy):
    """A reconciliation of a connection whose backfill has not finished (it is running, or was cut
    short and waits to be resumed): the backfill compares both sides in full itself, and a
    reconciliation beside it would list everything again and create what the backfill is linking."""


class JobLost(JobError):
    """The job's lease was taken over (this process stalled longer than the lease)."""


class ProblemError(Exception):
    """An HTTP error answer of the service, rendered as problem+json."""

    def __init__(
        self, status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extra = extra
        super().__init__(f"{status} {title}: {detail}")
