"""Re-running dead events: ``rankr-ghl-sync replay`` and ``POST /admin/replay``.

A replayed event goes back into the queue as new (pending, no attempts, no error) and is coalesced
with whatever its record has queued since, so it applies the newest state, not a stale one.
Events are named by the id ``/status`` shows (the sender's webhook id) or by their row id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.admin import admin_router
from app.connections.models import Connection, ConnectionId
from app.db import unit_of_work
from app.errors import ProblemError
from app.inbox import repository as inbox
from app.inbox.models import as_row_id
from app.kit.clock import Clock


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead events to replay: these ids, the events of this connection, both, or all."""

    events: Sequence[str] = ()
    connection: int | None = None
    everything: bool = False

    def problem(self) -> str | None:
        """Why the selection is not valid, or None."""
        chosen = bool(self.events) or self.connection is not None
        if self.everything and chosen:
            return "'all' replays every dead event; it cannot be combined with events or a connection"
        if not self.everything and not chosen:
            return "name the dead events to replay: event ids, a connection id, or all"
        return None


router = admin_router()


class UnknownConnection(LookupError):
    pass


async def replay(sessions: async_sessionmaker[AsyncSession], clock: Clock, selection: Selection) -> int:
    """Put the selected dead events back in the queue; how many there were."""
    async with unit_of_work(sessions) as session:
        accounts: list[str] | None = None
        if selection.connection is not None:
            connection = await session.get(Connection, selection.connection)
            if connection is None:
                raise UnknownConnection(f"there is no connection {selection.connection}")
            accounts = [connection.rankr_account_id, connection.ghl_location_id]
        ids = [number for number in map(as_row_id, selection.events) if number is not None]
        named = bool(selection.events)
        return await inbox.replay_dead(
            session,
            clock(),
            event_ids=ids if named else None,
            source_event_ids=list(selection.events) if named else None,
            account_keys=accounts,
        )


class ReplayRequest(BaseModel):
    """Body of ``POST /admin/replay``."""

    model_config = ConfigDict(extra="forbid")

    events: list[str] = Field(default_factory=list, description="event ids, as /status shows them")
    connection: ConnectionId | None = Field(default=None, description="every dead event of this connection")
    all: bool = Field(default=False, description="every dead event")

    @model_validator(mode="after")
    def _one_selection(self) -> ReplayRequest:
        problem = self.selection.problem()
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def selection(self) -> Selection:
        return Selection(events=tuple(self.events), connection=self.connection, everything=self.all)


@router.post("/replay", summary="Re-run dead events (by event id, by connection, or all)")
async def replay_route(request: Request, body: ReplayRequest) -> dict[str, Any]:
    state = request.app.state
    try:
        count = await replay(state.sessions, state.clock, body.selection)
    except UnknownConnection as exc:
        raise ProblemError(404, "Not Found", str(exc)) from exc
    if count:
        state.intake.on_stored()
    return {"replayed": count}
