"""Sync handler tests run in process: the service, its sandboxes and a worker the test drives."""

from __future__ import annotations

import pytest

from tests.support.inprocess import InProcessService


@pytest.fixture
def service(inprocess: InProcessService) -> InProcessService:
    """The in-process service on SQLite (``behaviour_database_url``): these tests are of behaviour."""
    return inprocess
