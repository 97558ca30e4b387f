"""Running a command's coroutine on uvloop, the event loop ``serve`` gets from uvicorn.

The worker spends a good share of its CPU in the event loop and its transports; uvloop does that
work in C.

What a process built before it starts its work (modules, models, the app) lives as long as the
process, so the cyclic garbage collector is told to leave it alone (``started``: ``gc.freeze``):
its full collections, and the last ones at exit, then walk only what the work makes.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel these tasks (None for none) and wait until they have ended, whatever they raise."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


def started() -> None:
    """The process is built: what exists now lives as long as it does (see above)."""
    gc.freeze()


def run(main: Coroutine[Any, Any, T]) -> T:
    started()
    return uvloop.run(main)
