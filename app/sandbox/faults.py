"""Injected faults: a fraction of API answers replaced by an error status, added latency, late answers
and lost answers.

A *lost answer* is a request the product applies and whose answer never reaches the client: it gets
a 504 instead, as from a gateway that gave up while the product was still at it. A *late answer*
(``answer_latency_ms``) is applied at once and answered late, so a client that gives up first never
learns it. Either way the client cannot tell it from a failure, and must not apply the write twice
when it retries.

Shared by both sandboxes; each side renders the error in its own format. The dice are the sandbox's
seeded ``random.Random`` so a test can make a fault pattern repeatable.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass


@dataclass
class FaultSettings:
    """What to inject: ``error_rate`` of API answers get ``error_status``; every one waits ``latency_ms``.

    ``answer_latency_ms`` holds back the answer of a request that was carried out: a client that
    times out meanwhile never learns that its change happened (a create it may then repeat).
    """

    error_rate: float = 0.0
    error_status: int = 503
    latency_ms: float = 0.0
    lost_answer_rate: float = 0.0
    answer_latency_ms: float = 0.0


class FaultInjector:
    """Rolls the dice for one sandbox's API requests."""

    def __init__(self, settings: FaultSettings, dice: random.Random) -> None:
        self.settings = settings
        self._dice = dice

    def pick_error(self) -> int | None:
        """The status to answer instead of the real one, or None to answer normally."""
        rate = self.settings.error_rate
        if rate > 0 and (rate >= 1 or self._dice.random() < rate):
            return self.settings.error_status
        return None

    def lose_answer(self) -> bool:
        """Whether to apply this request but answer 504 instead of its real answer."""
        rate = self.settings.lost_answer_rate
        return rate > 0 and (rate >= 1 or self._dice.random() < rate)

    async def delay(self) -> None:
        if self.settings.latency_ms > 0:
            await asyncio.sleep(self.settings.latency_ms / 1000)

    async def delay_answer(self) -> None:
        if self.settings.answer_latency_ms > 0:
            await asyncio.sleep(self.settings.answer_latency_ms / 1000)
