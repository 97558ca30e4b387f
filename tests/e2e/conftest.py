"""End-to-end fixtures: the service with its sandboxes, on each database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.service import Service, running_service


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    with running_service(database_url) as running:
        yield running
