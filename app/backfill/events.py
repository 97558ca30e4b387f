"""The synthetic inbox events backfill and reconciliation queue: the worker applies them like webhooks.

A record on one side only is queued as the event its own webhook would have been (``contact.created``
with the contact, ``ContactCreate`` with the id), so it is created on the other side by the usual
path, GHL upsert and Rankr's 409 included. The records come as the listing showed them (a GHL
contact under ``listed``, a pair's two under ``listed``), so creating or first linking them costs
no read; a record linked meanwhile is read again as usual. Two records of the same person are queued as
``sync.contact.pair``; a link to check as ``sync.contact.reconcile``. Each event has a deterministic
id (``sync:<job>:<connection>:...``): queuing it again after a crash stores nothing new. Events
about one record share that record's ordering key, so they apply in order with its webhooks.
"""

from __future__ import annotations

from typing import Any

from app.backfill.models import StagedContact
from app.connections.models import Connection
from app.inbox.models import EventStatus, Source
from app.inbox.service import IncomingEvent, ordering_key
from app.sync.base import Side
from app.sync.children import SURVEY
from app.sync.models import Kind
from app.sync.repair import CHILD_PAIR, CHILD_RECONCILE, CREATED, PAIR, RECONCILE

KIND = "contact"


def prefix(job: str, connection: Connection) -> str:
    """The id prefix of every event a job queues for a connection."""
    return f"sync:{job}:{connection.id}:"


def create(
    job: str, run: str, connection: Connection, side: str, record_id: str, wire: dict[str, Any] | None
) -> IncomingEvent:
    """The 'created' event of a record that exists on one side only."""
    event_id = f"{prefix(job, connection)}{run}:{side}:{record_id}"
    if side == Source.RANKR:
        account = connection.rankr_account_id
        payload = {"type": "contact.created", "accountId": account, "data": wire or {}, "synthetic": job}
        return IncomingEvent(
            Source.RANKR,
            event_id,
            "contact.created",
            account,
            ordering_key(Source.RANKR, account, KIND, record_id),
            payload,
        )
    location = connection.ghl_location_id
    return IncomingEvent(
        Source.GHL,
        event_id,
        "ContactCreate",
        location,
        ordering_key(Source.GHL, location, KIND, record_id),
        {"type": "ContactCreate", "locationId": location, "id": record_id, "synthetic": job, "listed": wire},
    )


def pair(
    job: str, run: str, connection: Connection, rankr: StagedContact, ghl: StagedContact
) -> IncomingEvent:
    payload = {
        "rankrId": rankr.record_id,
        "ghlId": ghl.record_id,
        "listed": {"rankr": rankr.wire, "ghl": ghl.wire},
    }
    name = f"pair:{rankr.record_id}:{ghl.record_id}"
    return _synthetic(job, run, connection, name, PAIR, rankr.record_id, payload)


def reconcile(job: str, run: str, connection: Connection, link_id: int, rankr_id: str) -> IncomingEvent:
    return _synthetic(job, run, connection, f"link:{link_id}", RECONCILE, rankr_id, {"linkId": link_id})


def _synthetic(
    job: str, run: str, connection: Connection, name: str, kind: str, rankr_id: str, payload: dict[str, Any]
) -> IncomingEvent:
    """A ``sync.contact.*`` event, ordered with the webhooks of its Rankr record."""
    account = connection.rankr_account_id
    return IncomingEvent(
        Source.RANKR,
        f"{prefix(job, connection)}{run}:{name}",
        kind,
        account,
        ordering_key(Source.RANKR, account, KIND, rankr_id),
        {**payload, "synthetic": job},
    )


def child_counts(by_type: dict[tuple[str, str, str], int]) -> dict[str, Any]:
    """What a job did to tasks and notes, from its events (by source, type and status): contacts
    surveyed (of those queued), and per kind the pairs linked, the records created on each side and
    the links repaired (events applied)."""
    applied = (EventStatus.DONE, EventStatus.SKIPPED)
    done: dict[tuple[str, str], int] = {}
    surveys = 0
    for (source, kind, status), count in by_type.items():
        if kind == SURVEY:
            surveys += count
        if status in applied:
            done[(source, kind)] = done.get((source, kind), 0) + count
    if not surveys:
        return {}
    counts: dict[str, Any] = {
        "contactsToSurvey": surveys,
        "contactsSurveyed": done.get((Source.RANKR, SURVEY), 0),
    }
    for kind in (Kind.TASK, Kind.NOTE):
        counts[f"{kind}s"] = {
            "paired": done.get((Source.RANKR, CHILD_PAIR[kind]), 0),
            "createdInGhl": done.get((Source.RANKR, CREATED[(kind, Side.RANKR)]), 0),
            "createdInRankr": done.get((Source.GHL, CREATED[(kind, Side.GHL)]), 0),
            "repaired": done.get((Source.RANKR, CHILD_RECONCILE[kind]), 0),
        }
    return counts
