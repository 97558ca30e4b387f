"""Removing a connection from another process (the CLI) while the service runs: the service's next
budget writes for it are skipped, not a foreign key error; the console's removal drops its clients."""

from __future__ import annotations

import logging

import pytest

from app.connections import repository as connections
from app.connections.removal import remove_connection
from tests.support.inprocess import InProcessService

pytestmark = pytest.mark.anyio


async def test_a_connection_removed_by_another_process_leaves_the_service_writing_no_budget_for_it(
    service: InProcessService, caplog: pytest.LogCaptureFixture
) -> None:
    registry = service.app.state.registry
    sessions = service.app.state.sessions
    async with sessions() as session:
        [connection] = await connections.all_connections(session)
    upstreams = registry.for_connection(connection)
    await upstreams.ghl.first_contacts()  # an answer whose rate-limit headers wait to be saved
    assert (connection.id, "ghl") in registry.budgets

    assert await remove_connection(sessions, connection.id, None) is True  # as the CLI does
    caplog.set_level(logging.INFO)
    await service.run_worker()  # saves the headers seen

    assert "worker.budget_flush" not in caplog.text
    assert await service.query("SELECT * FROM rate_budgets") == []
    assert connection.id in registry.connection_ids  # another process's removal: kept until restart


async def test_the_console_and_cli_removal_drops_the_serving_processs_clients(
    service: InProcessService,
) -> None:
    registry = service.app.state.registry
    async with service.app.state.sessions() as session:
        [connection] = await connections.all_connections(session)
    registry.for_connection(connection)
    assert await remove_connection(service.app.state.sessions, connection.id, registry) is True
    assert connection.id not in registry.connection_ids
