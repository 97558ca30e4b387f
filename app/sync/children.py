"""Tasks and notes, both directions: Rankr task.* / note.* events -> GHL, GHL Task* / Note* -> Rankr.

A task or note hangs off its contact: its link's parent is the contact's link, and it is written on
the other side under the contact that link names. The guarantees are the contacts' (``contacts.py``):

- **Waiting for the contact.** An event whose contact is not linked yet is put back (no attempt
  counted) until it is. When no event of that contact is queued, one is queued for it (an update of
  the contact, as its side would send), so the contact comes over first and its task or note
  follows. Nothing is dropped, and nothing is created under a contact the other side does not have.
- **No duplicates.** A create runs behind a pending link. An event about a record that is new to the
  service waits while a create toward its side is in flight for the same contact (it may be that
  create's echo), unless a survey queued it (a record it listed was there before that create). A
  create cut short by a crash is resumed by looking for the record among the contact's records on
  the target side (same fields, not linked yet) before creating it again.
- **No echoes, no stale overwrites.** The link keeps the fields both sides hold since the last sync;
  an event that matches them writes nothing. GHL tasks and notes carry no modification time, so a
  GHL event that differs from the snapshot is applied from the record as GHL holds it now (one read);
  Rankr events carry ``lastModified`` and one not newer than the newest seen is re-read first.
- **Deletion** of a task or note deletes its counterpart; deleting a contact ends the links of its
  tasks and notes (``contacts.py``), as both products delete them with the contact.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from app.errors import Deferred, MappingError, UpstreamNotFound
from app.inbox.models import OPEN_STATUSES, EventStatus, Source, WebhookEvent
from app.inbox.service import IncomingEvent, enqueue, ordering_key
from app.integrations.ghl.schemas import GhlNote, GhlTask
from app.integrations.rankr.schemas import RankrNote, RankrTask
from app.kit.clock import format_instant
from app.sync import mapping
from app.sync import repository as links
from app.sync.base import (
    ENDED,
    EventContext,
    Handler,
    Job,
    Observed,
    Settlement,
    Side,
    Upstreams,
    modified_column,
    snapshot_values,
)
from app.sync.mapping import Canonical, FieldMaps
from app.sync.models import Kind, Link, LinkState

ModelT = TypeVar("ModelT", bound=BaseModel)
CONTACT = Kind.CONTACT.value
# How long a task or note waits before looking again for its contact's link.
CONTACT_WAIT_SECONDS = 2.0
# The event of one linked contact's survey (``repair.ChildRepair``); the created events it queues
# carry it as their ``synthetic`` marker.
SURVEY = "sync.children.survey"


def _validated(model: type[ModelT], data: Any, what: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ()))
        raise MappingError(f"the {what} in the event cannot be read: {where}: {error['msg']}") from exc


def _surveyed(job: Job) -> bool:
    """Whether the event is one a survey queued for a record it listed. Such a record is no echo: it
    existed before any create now in flight for its contact began (a survey waits for those)."""
    return job.payload.get("synthetic") == SURVEY


def _outrun(job: Job, seen: Observed) -> bool:
    """Whether a newer state than the body's may have been folded away: of several coalesced GHL
    bodies the last to arrive need not be the newest (GHL sends no times, and not always in order),
    and even one equal to the last synced state may hide a change."""
    return seen.side is Side.GHL and bool(job.superseded) and not seen.current


class ChildSync(Handler, ABC):
    """Applies task or note events of one connection to the other side."""

    id_field: str  # the Rankr event's id member (``taskId``)
    delete_types: frozenset[str]

    def __init__(self, *args: Any, maps: FieldMaps, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._maps = maps

    # --- what each kind provides ---------------------------------------------------------------------

    @abstractmethod
    def from_rankr(self, data: dict[str, Any]) -> Observed: ...

    @abstractmethod
    def from_ghl(self, event_type: str, payload: dict[str, Any]) -> Observed: ...

    @abstractmethod
    async def fetch(
        self, upstreams: Upstreams, side: Side, contact_id: str, record_id: str
    ) -> Observed | None:
        """The record as its side holds it now, or None when it is gone."""

    @abstractmethod
    async def list(self, upstreams: Upstreams, side: Side, contact_id: str) -> list[Observed]: ...

    @abstractmethod
    async def create(
        self, upstreams: Upstreams, side: Side, contact_id: str, origin: Observed
    ) -> Observed: ...

    @abstractmethod
    async def update(
        self, upstreams: Upstreams, side: Side, contact_id: str, record_id: str, fields: Canonical
    ) -> Observed: ...

    @abstractmethod
    async def delete(self, upstreams: Upstreams, side: Side, contact_id: str, record_id: str) -> None: ...

    async def locate(self, upstreams: Upstreams, seen: Observed) -> Observed | None:
        """Find a GHL record whose event named no contact (None: it cannot be found)."""
        return None

    # --- routing -------------------------------------------------------------------------------------

    async def handle(self, context: EventContext) -> None:
        side = context.job.source
        if context.job.type in self.delete_types:
            await self.deleted(context, side, self._deleted_id(context.job))
            return
        if side is Side.RANKR:
            seen = self.from_rankr(context.job.payload.get("data") or {})
        else:
            seen = self.from_ghl(context.job.type, context.job.payload)
            if _outrun(context.job, seen):
                seen = replace(seen, complete=False)  # read from GHL before it is created elsewhere
        async with self._sessions() as session:
            link = await links.find(session, context.connection.id, self.kind, side, seen.record_id)
        if link is None:
            await self._new(context, seen)
        else:
            await self.leased(context, link, partial(self._changed, context, seen))

    def _deleted_id(self, job: Job) -> str:
        if job.source is Side.RANKR:
            record_id = (job.payload.get("data") or {}).get(self.id_field)
        else:
            record_id = job.payload.get("id")
        if not isinstance(record_id, str) or not record_id:
            raise MappingError(f"the {self.kind} deletion names no {self.kind} id")
        return record_id

    # --- a record new to the service -----------------------------------------------------------------

    async def _new(self, context: EventContext, seen: Observed) -> None:
        if seen.contact_id is None:
            found = await self.locate(context.upstreams, seen)
            if found is None:
                raise MappingError(
                    f"the {seen.side.value} {self.kind} {seen.record_id} names no contact and cannot be found"
                )
            seen = found
        contact_id = seen.contact_id
        assert contact_id is not None  # noqa: S101 - located records name their contact
        async with self._sessions() as session:
            parent = await links.find(session, context.connection.id, CONTACT, seen.side, contact_id)
        if parent is None or parent.state == LinkState.PENDING:
            await self._wait_for_contact(context, seen.side, contact_id)
            return
        if parent.state in ENDED:
            note = f"its contact is {parent.state}; the {self.kind} is not synced"
            await self.settle(context, Settlement(note=note))
            return
        async with self._sessions() as session:
            link, in_flight = await links.find_with_pending(
                session, context.connection.id, self.kind, seen.side, seen.record_id, parent_id=parent.id
            )
        if link is not None:  # linked meanwhile: this is now a change of a known record
            await self.leased(context, link, partial(self._changed, context, seen))
            return
        if in_flight and not _surveyed(context.job):
            raise Deferred(
                f"a {self.kind} create toward this side is in flight for the contact; this may be its echo",
                self.in_flight_delay(in_flight),
            )
        if not seen.complete:
            fetched = await self.fetch(context.upstreams, seen.side, contact_id, seen.record_id)
            if fetched is None:
                await self.settle_gone(context, seen.side, seen.record_id)
                return
            seen = fetched
        link = await self.claim_new(context, seen.side, seen.record_id, seen.fields, parent_id=parent.id)
        await self.creating(context, link, self._create_and_link(context, seen, link, parent, resumed=False))

    async def _wait_for_contact(self, context: EventContext, side: Side, contact_id: str) -> None:
        """Defer until the contact is linked, queueing an update of the contact if none is queued.

        Returns only when the event was settled instead (the contact no longer exists).
        """
        source = Source(side.value)
        key = ordering_key(source, context.job.account_key, CONTACT, contact_id)
        request_id = f"sync:contact:{contact_id}"
        async with self._sessions() as session:
            queued = await session.scalar(
                select(WebhookEvent.id)
                .where(WebhookEvent.ordering_key == key, WebhookEvent.status.in_(OPEN_STATUSES))
                .limit(1)
            )
            requested = await session.scalar(
                select(WebhookEvent.status).where(
                    WebhookEvent.source == source.value, WebhookEvent.event_id == request_id
                )
            )
        if requested in OPEN_STATUSES:
            queued = 0  # queued by another task or note of the contact between the two reads
        if queued is None and requested == EventStatus.DEAD:
            raise MappingError(
                f"{side.value} contact {contact_id} of this {self.kind} could not be linked (its sync event "
                f"'{request_id}' is dead); fix or replay that event, then replay this one"
            )
        if queued is None and requested is not None:
            # The contact's own sync ran and linked nothing: a filter left it out, or it is gone.
            note = f"{side.value} contact {contact_id} is not synced, so neither is the {self.kind}"
            await self.settle(context, Settlement(note=note))
            return
        if queued is None:
            payload = await self._contact_request(context, side, contact_id)
            if payload is None:
                note = f"{side.value} contact {contact_id} no longer exists; the {self.kind} is not synced"
                await self.settle(context, Settlement(note=note))
                return
            request = IncomingEvent(
                source, request_id, payload["type"], context.job.account_key, key, payload
            )
            await enqueue(self._sessions, request, self._clock())  # False: another task queued it first
        raise Deferred(f"waiting for {side.value} contact {contact_id} to be linked", CONTACT_WAIT_SECONDS)

    async def _contact_request(
        self, context: EventContext, side: Side, contact_id: str
    ) -> dict[str, Any] | None:
        """The body of a contact update event as ``side`` would send it (None: the contact is gone)."""
        account = context.job.account_key
        now = format_instant(self._clock())
        if side is Side.GHL:
            # The contact handler reads a GHL contact it does not know from the API anyway.
            return {
                "type": "ContactUpdate",
                "locationId": account,
                "id": contact_id,
                "timestamp": now,
            }
        contact = await context.upstreams.rankr.get_contact(contact_id)
        if contact is None:
            return None
        data = contact.model_dump(by_alias=True, mode="json")
        return {"type": "contact.updated", "timestamp": now, "accountId": account, "data": data}

    async def _create_and_link(
        self,
        context: EventContext,
        seen: Observed,
        link: Link,
        parent: Link,
        *,
        resumed: bool,
    ) -> None:
        target = seen.side.other
        target_contact = getattr(parent, f"{target.value}_id")
        result = Settlement(link_id=link.id, synced={target.inbound})
        changes = mapping.describe(mapping.present(seen.fields), None)
        made = await self._created_before(context, target, target_contact, seen) if resumed else None
        if made is None:
            call = self.create(context.upstreams, target, target_contact, seen)
            made = await self.write(context, link, target, "create", changes, call)
        result.audits.append(self.audit(link, target, "create", changes, written_id=made.record_id))
        result.link_values = {
            "state": LinkState.LINKED,
            f"{target.value}_id": made.record_id,
            modified_column(target): made.modified_at,
            modified_column(seen.side): seen.modified_at,
            "synced_at": self._clock(),
            # What both sides hold now (the target may have filled a field, e.g. GHL's due date).
            **snapshot_values({**seen.fields, **made.fields}),
        }
        await self.settle(context, result)

    async def _created_before(
        self, context: EventContext, target: Side, target_contact: str, seen: Observed
    ) -> Observed | None:
        """The record an earlier, interrupted attempt of this create made on ``target``, if any: one
        with the same fields (those the origin knows) that is not linked to any record yet."""
        wanted = mapping.present(seen.fields)
        for candidate in await self.list(context.upstreams, target, target_contact):
            if mapping.changes(wanted, candidate.fields):
                continue
            async with self._sessions() as session:
                taken = await links.find(
                    session, context.connection.id, self.kind, target, candidate.record_id
                )
            if taken is None:
                return candidate
        return None

    # --- a change of a linked record -----------------------------------------------------------------

    async def _changed(self, context: EventContext, seen: Observed, link: Link) -> None:
        async with self._sessions() as session:
            parent = await links.get(session, link.parent_id) if link.parent_id is not None else None
        if parent is None or parent.state != LinkState.LINKED:
            state = parent.state if parent is not None else "gone"
            note = f"its contact is {state}; nothing to apply"
            await self.settle(context, Settlement(note=note, link_id=link.id, link_values={}))
            return
        contact_id = getattr(parent, f"{seen.side.value}_id")
        if link.state == LinkState.PENDING:
            # An earlier attempt began the create and did not finish: finish it (idempotently).
            if not seen.complete:
                fetched = await self.fetch(context.upstreams, seen.side, contact_id, seen.record_id)
                if fetched is None:
                    await self.settle_gone(context, seen.side, seen.record_id, link)
                    return
                seen = fetched
            await self.creating(
                context, link, self._create_and_link(context, seen, link, parent, resumed=True)
            )
            return
        await self._update(context, replace(seen, contact_id=contact_id), link, parent)

    async def _update(self, context: EventContext, seen: Observed, link: Link, parent: Link) -> None:
        contact_id = seen.contact_id
        assert contact_id is not None  # noqa: S101 - set from the parent link by _changed
        fetch = partial(self.fetch, context.upstreams, seen.side, contact_id, seen.record_id)
        if _outrun(context.job, seen):
            fresh = await fetch()
            if fresh is None:
                await self.settle_gone(context, seen.side, seen.record_id, link)
                return
            seen = fresh
        found = await self.current_change(context, link, seen, fetch, untimed=seen.side is Side.GHL)
        if found is None:
            return
        seen, update, values = found
        target = seen.side.other
        target_id = getattr(link, f"{target.value}_id")
        target_contact = getattr(parent, f"{target.value}_id")
        changes = mapping.describe(update, link.snapshot)
        result = Settlement(link_id=link.id, synced={target.inbound})
        call = self.update(context.upstreams, target, target_contact, target_id, update)
        try:
            written = await self.write(context, link, target, "update", changes, call)
        except UpstreamNotFound:
            # Deleted on the other side meanwhile.
            await self.settle_gone(context, target, target_id, link)
            return
        result.audits.append(self.audit(link, target, "update", changes))
        values.update(
            self.synced_values(link, target, written.modified_at, {**(link.snapshot or {}), **update})
        )
        result.link_values = values
        await self.settle(context, result)

    # --- deletions -----------------------------------------------------------------------------------

    async def settle_delete(self, context: EventContext, side: Side, link: Link) -> None:
        target = side.other
        target_id: str | None = getattr(link, f"{target.value}_id")
        async with self._sessions() as session:
            parent = await links.get(session, link.parent_id) if link.parent_id is not None else None
        result = Settlement(link_id=link.id, link_values={"state": LinkState.DELETED})
        if target_id is None or parent is None or parent.state != LinkState.LINKED:
            # Never created on the other side, or its contact is gone there (with its records).
            result.note = f"nothing to delete on {target.value}"
            await self.settle(context, result)
            return
        call = self.delete(context.upstreams, target, getattr(parent, f"{target.value}_id"), target_id)
        await self.write(context, link, target, "delete", {}, call)
        result.audits.append(self.audit(link, target, "delete", {}))
        result.synced.add(target.inbound)
        await self.settle(context, result)


class TaskSync(ChildSync):
    """Tasks: title, description/body, due date, completed, assignee (user map)."""

    kind = Kind.TASK.value
    id_field = "taskId"
    delete_types = frozenset({"task.deleted", "TaskDelete"})

    def __init__(self, *args: Any, default_due: timedelta, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._default_due = default_due

    def _rankr(self, task: RankrTask, *, current: bool) -> Observed:
        fields = mapping.task_from_rankr(task, self._maps)
        return Observed(
            Side.RANKR, task.task_id, task.last_modified, fields, current, contact_id=task.contact_id
        )

    def _ghl(self, task: GhlTask, *, current: bool) -> Observed:
        fields = mapping.task_from_ghl(task, self._maps)
        return Observed(Side.GHL, task.id, None, fields, current, contact_id=task.contact_id)

    def from_rankr(self, data: dict[str, Any]) -> Observed:
        return self._rankr(_validated(RankrTask, data, "Rankr task"), current=False)

    def from_ghl(self, event_type: str, payload: dict[str, Any]) -> Observed:
        task = _validated(GhlTask, payload, "GHL task")
        fields = mapping.task_from_ghl(task, self._maps, partial=True)
        # GHL's bodies carry no ``completed``: TaskCreate is sent for a new (open) task, TaskComplete
        # when it is ticked off. (The task poll's TaskUpdate events carry it.)
        fields.setdefault("completed", event_type == "TaskComplete")
        known = set(fields) >= set(mapping.task_from_ghl(GhlTask(id=task.id), self._maps))
        return Observed(
            Side.GHL, task.id, None, fields, current=False, contact_id=task.contact_id, complete=known
        )

    async def fetch(
        self, upstreams: Upstreams, side: Side, contact_id: str, record_id: str
    ) -> Observed | None:
        if side is Side.GHL:
            ghl = await upstreams.ghl.get_task(contact_id, record_id)
            return None if ghl is None else self._ghl(replace_contact(ghl, contact_id), current=True)
        rankr = await upstreams.rankr.get_task(contact_id, record_id)
        return None if rankr is None else self._rankr(rankr, current=True)

    async def list(self, upstreams: Upstreams, side: Side, contact_id: str) -> list[Observed]:
        if side is Side.GHL:
            tasks = await upstreams.ghl.list_tasks(contact_id)
            return [self._ghl(replace_contact(task, contact_id), current=True) for task in tasks]
        return [self._rankr(task, current=True) for task in await upstreams.rankr.list_tasks(contact_id)]

    async def locate(self, upstreams: Upstreams, seen: Observed) -> Observed | None:
        found = await upstreams.ghl.find_task(seen.record_id, seen.fields.get("title"))
        if found is None or not found.contact_id:
            return None
        return self._ghl(found, current=True)

    async def create(self, upstreams: Upstreams, side: Side, contact_id: str, origin: Observed) -> Observed:
        fields = mapping.present(origin.fields)
        fields.setdefault("completed", False)
        if side is Side.GHL:
            if "dueDate" not in fields:
                # GHL requires a due date: a task without one is due a set time after it was made.
                made = origin.modified_at or self._clock()
                fields["dueDate"] = format_instant(made + self._default_due)
            body = mapping.task_ghl_body(fields, self._maps)
            created = await upstreams.ghl.create_task(contact_id, body)
            return self._ghl(replace_contact(created, contact_id), current=True)
        if "title" not in fields:
            raise MappingError("the GHL task has no title, which Rankr requires")
        rankr = await upstreams.rankr.create_task(contact_id, mapping.task_rankr_body(fields))
        return self._rankr(rankr, current=True)

    async def update(
        self, upstreams: Upstreams, side: Side, contact_id: str, record_id: str, fields: Canonical
    ) -> Observed:
        if side is Side.GHL:
            if set(fields) == {"completed"}:
                task = await upstreams.ghl.set_task_completed(
                    contact_id, record_id, bool(fields["completed"])
                )
            else:
                body = mapping.task_ghl_body(fields, self._maps)
                task = await upstreams.ghl.update_task(contact_id, record_id, body)
            return self._ghl(replace_contact(task, contact_id), current=True)
        rankr = await upstreams.rankr.update_task(contact_id, record_id, mapping.task_rankr_body(fields))
        return self._rankr(rankr, current=True)

    async def delete(self, upstreams: Upstreams, side: Side, contact_id: str, record_id: str) -> None:
        if side is Side.GHL:
            await upstreams.ghl.delete_task(contact_id, record_id)
        else:
            await upstreams.rankr.delete_task(contact_id, record_id)


def replace_contact(task: GhlTask, contact_id: str) -> GhlTask:
    """A GHL task with its contact filled in (answers of the contact's task routes may leave it out)."""
    return task if task.contact_id else task.model_copy(update={"contact_id": contact_id})


class NoteSync(ChildSync):
    """Notes: the body; the author (user map) is set on create only."""

    kind = Kind.NOTE.value
    id_field = "noteId"
    delete_types = frozenset({"note.deleted", "NoteDelete"})

    @staticmethod
    def _rankr(note: RankrNote, *, current: bool) -> Observed:
        fields = mapping.note_from_rankr(note)
        return Observed(
            Side.RANKR,
            note.note_id,
            note.last_modified,
            fields,
            current,
            contact_id=note.contact_id,
            author=note.author_id,
        )

    @staticmethod
    def _ghl(note: GhlNote, contact_id: str | None, *, current: bool, partial: bool = False) -> Observed:
        fields = mapping.note_from_ghl(note, partial=partial)
        return Observed(
            Side.GHL,
            note.id,
            None,
            fields,
            current,
            contact_id=note.contact_id or contact_id,
            complete="body" in fields,
            author=note.user_id,
        )

    def from_rankr(self, data: dict[str, Any]) -> Observed:
        return self._rankr(_validated(RankrNote, data, "Rankr note"), current=False)

    def from_ghl(self, event_type: str, payload: dict[str, Any]) -> Observed:
        return self._ghl(_validated(GhlNote, payload, "GHL note"), None, current=False, partial=True)

    async def fetch(
        self, upstreams: Upstreams, side: Side, contact_id: str, record_id: str
    ) -> Observed | None:
        if side is Side.GHL:
            ghl = await upstreams.ghl.get_note(contact_id, record_id)
            return None if ghl is None else self._ghl(ghl, contact_id, current=True)
        rankr = await upstreams.rankr.get_note(contact_id, record_id)
        return None if rankr is None else self._rankr(rankr, current=True)

    async def list(self, upstreams: Upstreams, side: Side, contact_id: str) -> list[Observed]:
        if side is Side.GHL:
            return [
                self._ghl(note, contact_id, current=True)
                for note in await upstreams.ghl.list_notes(contact_id)
            ]
        return [self._rankr(note, current=True) for note in await upstreams.rankr.list_notes(contact_id)]

    async def create(self, upstreams: Upstreams, side: Side, contact_id: str, origin: Observed) -> Observed:
        body = origin.fields.get("body") or ""
        if side is Side.GHL:
            fields: dict[str, Any] = {"body": body}
            author = self._maps.users.get(origin.author) if origin.author else None
            if author:
                fields["userId"] = author
            return self._ghl(await upstreams.ghl.create_note(contact_id, fields), contact_id, current=True)
        return self._rankr(await upstreams.rankr.create_note(contact_id, body), current=True)

    async def update(
        self, upstreams: Upstreams, side: Side, contact_id: str, record_id: str, fields: Canonical
    ) -> Observed:
        body = fields.get("body") or ""
        if side is Side.GHL:
            note = await upstreams.ghl.update_note(contact_id, record_id, {"body": body})
            return self._ghl(note, contact_id, current=True)
        return self._rankr(await upstreams.rankr.update_note(contact_id, record_id, body), current=True)

    async def delete(self, upstreams: Upstreams, side: Side, contact_id: str, record_id: str) -> None:
        if side is Side.GHL:
            await upstreams.ghl.delete_note(contact_id, record_id)
        else:
            await upstreams.rankr.delete_note(contact_id, record_id)
