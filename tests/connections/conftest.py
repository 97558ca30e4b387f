"""The connection tests run on the in-process service (``tests/support/inprocess.py``) with an admin
token: its clients reach the sandboxes it mounts over ``httpx.ASGITransport``, so verification runs
real HTTP exchanges without a socket. On both databases: they read and write the connection rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from tests.support.inprocess import InProcessService, inprocess_service

ADMIN_TOKEN = "s3cret"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def started(database_url: str, **overrides: Any) -> AbstractAsyncContextManager[InProcessService]:
    """The in-process service with the admin token and ``overrides`` (settings), started and verified."""
    return inprocess_service(database_url, admin_token=ADMIN_TOKEN, **overrides)


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[InProcessService]:
    """The service in sandbox mode with its seeded connection, verified at start-up."""
    async with started(database_url) as running:
        yield running
