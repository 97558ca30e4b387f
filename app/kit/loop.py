"""Running a command's coroutine on uvloop, the event loop ``serve`` gets from uvicorn.

The worker spends a good share of its CPU in the event loop and its transports; uvloop does that
work in C (about 6 % more events per second for one worker process, bench/findings.md).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    return uvloop.run(main)
