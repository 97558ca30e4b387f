"""A failure that repeats in a loop, logged as a streak rather than once per try.

A loop that retries every second would otherwise write a line (and a traceback) every second for as
long as the cause lasts. ``FailureStreak`` logs three kinds of line, named after the loop's event:

- ``<name>_failed`` when a streak starts: the cause and what to do, in one line;
- ``<name>_still_failing`` at most once per ``every`` seconds while it lasts, with the count so far;
- ``<name>_restored`` when the loop succeeds again, with how long the streak lasted and its count.

What a failure means is told by ``explain`` (injected, so this module knows no domain): a known cause
gets its one line, with the traceback only at DEBUG; an unknown one (a bug) gets its traceback once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any


def _unexplained(_error: BaseException) -> str | None:
    return None


def error_text(error: BaseException, limit: int = 300) -> str:
    """The error's type and the first line of its message, shortened: enough to tell causes apart."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:limit]


class FailureStreak:
    """Logs the start of a run of failures, a count now and then while it lasts, and its end."""

    def __init__(
        self,
        logger: logging.Logger,
        name: str,
        *,
        explain: Callable[[BaseException], str | None] = _unexplained,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``explain`` turns an error into its cause and fix (None when it does not know it);
        ``clock`` gives monotonic seconds."""
        self._log = logger
        self._name = name
        self._explain = explain
        self._every = every
        self._clock = clock
        self._since: float | None = None  # when the streak started
        self._reported_at = 0.0
        self._failures = 0
        self._reason = ""

    @property
    def failing(self) -> bool:
        return self._since is not None

    @property
    def failures(self) -> int:
        """Failures counted in the current streak (0 when none is going on)."""
        return self._failures

    def failed(self, error: BaseException, **extra: Any) -> None:
        """Count a failure; the first of a streak is logged, the rest once per ``every`` seconds."""
        now = self._clock()
        self._failures += 1
        if self._since is None:
            self._since = self._reported_at = now
            reason = self._explain(error)
            if reason is None:
                self._reason = error_text(error)
                extra = {"error": self._reason, **extra}
                self._log.error(f"{self._name}_failed", exc_info=error, extra=extra)
            else:
                self._reason = reason
                trace = error if self._log.isEnabledFor(logging.DEBUG) else None
                self._log.warning(f"{self._name}_failed", exc_info=trace, extra={"reason": reason, **extra})
            return
        if now - self._reported_at >= self._every:
            self._reported_at = now
            seconds = round(now - self._since)
            self._log.warning(
                f"{self._name}_still_failing",
                extra={"failures": self._failures, "seconds": seconds, "reason": self._reason},
            )

    def known(self, reason: str) -> None:
        """A streak whose start was reported elsewhere (in the same words): count from now, quietly."""
        if self._since is None:
            self._since = self._reported_at = self._clock()
            self._reason = reason

    def succeeded(self) -> None:
        """The loop worked: end the streak, saying how long it lasted, if one was going on."""
        if self._since is None:
            return
        if self._failures:
            self._log.info(
                f"{self._name}_restored",
                extra={"failures": self._failures, "seconds": round(self._clock() - self._since, 1)},
            )
        self._since = None
        self._failures = 0
