"""Running a command's coroutine on uvloop, the event loop ``serve`` gets from uvicorn.

The worker spends a good share of its CPU in the event loop and its transports; uvloop does that
work in C (about 6 % more events per second for one worker process, bench/findings.md).

What a process built before it starts its work (modules, models, the app) lives as long as the
process, so the cyclic garbage collector is told to leave it alone (``gc.freeze``): its full
collections then walk only what the work makes, and exiting no longer walks it all either (about
0.2 s of every command's run).
"""

from __future__ import annotations

import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def started() -> None:
    """The process is built: what exists now lives as long as it does (see above)."""
    gc.freeze()


def run(main: Coroutine[Any, Any, T]) -> T:
    started()
    return uvloop.run(main)
