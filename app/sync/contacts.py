"""Contacts, both directions: Rankr contact.* events -> GHL, GHL Contact* events -> Rankr.

How the guarantees hold:

- **No duplicates.** A record with no link is created on the other side only after a *pending* link
  row is committed for it. The unique constraints on (connection, kind, side id) stop a second worker,
  and an incoming event from the other side that could be the echo of a create still in flight (same
  email, phone or content) is deferred until that create has finished and linked both records. GHL
  creates go through ``POST /contacts/upsert`` and Rankr creates answer 409 with the id of a contact
  that already holds the email, so a person that already exists on the other side is linked, not
  created twice.
- **No echoes.** The link keeps the canonical fields both sides hold since the last sync. An event
  whose fields equal that snapshot (the echo of our own write, a no-op, a duplicate) writes nothing;
  for GHL the webhook body is compared first, so an echo costs no API call at all.
- **No stale overwrites.** Rankr events carry ``lastModified``: one not newer than the newest seen
  for the record is skipped. GHL webhooks carry no modification time, so a GHL change is applied from
  the record fetched at processing time, which is the current state whatever order events came in.
- **Only what changed is written**, field by field, so a change made meanwhile on the other side to
  another field is not overwritten.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.automation.config import Filters
from app.config import DeleteMode
from app.connections.models import Connection
from app.db import autocommit
from app.errors import Deferred, LinkConflictError, MappingError, UpstreamNotFound
from app.integrations.ghl.schemas import GhlContact
from app.integrations.rankr.schemas import RankrContact
from app.kit.clock import parse_instant
from app.sync import mapping
from app.sync import repository as links
from app.sync.base import (
    EventContext,
    Handler,
    Job,
    Observed,
    Settlement,
    Side,
    Upstreams,
    at_location,
    current_location,
    modified_column,
    newest,
    snapshot_values,
)
from app.sync.mapping import Canonical, FieldMaps
from app.sync.models import Kind, Link, LinkState

KIND = Kind.CONTACT.value
COMPANY = "companyName"
GHL_DELETE = "ContactDelete"
RANKR_DELETE = "contact.deleted"
UNCHANGED = "unchanged since the last sync (echo or no-op)"


async def _as_observed(observed: Observed) -> Observed:
    return observed


class ContactSync(Handler):
    """Applies contact events of one connection to the other side."""

    kind = KIND

    def __init__(
        self,
        *args: Any,
        maps: FieldMaps,
        delete_mode: DeleteMode,
        unlink_tag: str,
        filters: Filters | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._all_maps = maps
        self._maps_at: dict[str | None, FieldMaps] = {}
        self._delete_mode = delete_mode
        self._unlink_tag = unlink_tag
        self._filters = filters or Filters()

    @property
    def _maps(self) -> FieldMaps:
        """The maps of the connection whose event is being applied (``at_location``)."""
        location = current_location()
        maps = self._maps_at.get(location)
        if maps is None:
            maps = self._maps_at[location] = self._all_maps.at(location)
        return maps

    def writable(self, fields: Canonical, target: Side) -> Canonical:
        return self._maps.writable(fields, target.value)

    def _admitted(self, seen: Observed) -> str | None:
        """Why a contact new to the service is not synced to the other side (None: it is)."""
        target = seen.side.other
        rule = self._filters.to_ghl if target is Side.GHL else self._filters.to_rankr
        if rule is None:
            return None
        tags = set(seen.fields.get("tags") or ())
        name = "filters.toGhl" if target is Side.GHL else "filters.toRankr"
        if rule.tags_any and not tags & set(mapping.tags(rule.tags_any)):
            return f"{name}: the contact has none of the tags {rule.tags_any}"
        if rule.tags_none and tags & set(mapping.tags(rule.tags_none)):
            return f"{name}: the contact has one of the tags {rule.tags_none}"
        if rule.sources and seen.source not in rule.sources:
            return f"{name}: the contact's source is not one of {rule.sources}"
        return None

    async def handle(self, context: EventContext) -> None:
        if context.job.source is Side.RANKR:
            data = context.job.payload.get("data") or {}
            if context.job.type == RANKR_DELETE:
                await self.deleted(context, Side.RANKR, str(data["contactId"]))
                return
            observed = self._rankr_shown(context.job)
            await self._sync(
                context, Side.RANKR, observed.record_id, partial(_as_observed, observed), shown=observed
            )
            return
        contact_id = str(context.job.payload["id"])
        if context.job.type == GHL_DELETE:
            await self.deleted(context, Side.GHL, contact_id)
            return
        await self._ghl_change(context, contact_id)

    async def echoes(self, session: AsyncSession, jobs: Sequence[Job]) -> list[Job]:
        """Those of ``jobs`` (claimed, not started) that change nothing (``_unchanged``): mostly the
        echoes of this service's own writes. Their links are read in ``session`` with one query per
        connection and side, so the claim can settle them all at once (``SyncEngine.settle_echoes``)."""
        shown = []
        for job in jobs:
            with at_location(job.connection.ghl_location_id if job.connection is not None else None):
                shown.append((job, job.connection, self._shown(job)))
        wanted: dict[tuple[int, Side], set[str]] = {}
        for _, connection, seen in shown:
            if connection is not None and seen is not None:
                wanted.setdefault((connection.id, seen.side), set()).add(seen.record_id)
        found = {
            (connection_id, side): await links.find_many(session, connection_id, KIND, side.value, ids)
            for (connection_id, side), ids in wanted.items()
        }
        echoes: list[Job] = []
        for job, connection, seen in shown:
            if connection is None or seen is None:
                continue
            link = found[(connection.id, seen.side)].get(seen.record_id)
            if link is not None and self._unchanged(job, link, seen):
                echoes.append(job)
        return echoes

    def _shown(self, job: Job) -> Observed | None:
        """The contact as the event's body shows it; None for a deletion, or a body that cannot be read."""
        if job.type in (RANKR_DELETE, GHL_DELETE):
            return None
        if job.source is Side.RANKR:
            with suppress(MappingError):
                return self._rankr_shown(job)
            return None
        with suppress(ValidationError):
            return self.from_ghl(GhlContact.model_validate(job.payload), current=False)
        return None

    def _rankr_shown(self, job: Job) -> Observed:
        """The Rankr contact of a (non-delete) event's body; MappingError when it cannot be read."""
        try:
            contact = RankrContact.model_validate(job.payload.get("data") or {})
        except ValidationError as exc:
            raise MappingError(
                f"the Rankr contact in the event cannot be read: {exc.errors()[0]['msg']}"
            ) from exc
        return self.from_rankr(contact, current=False)

    # --- GHL changes: compare the webhook body first, fetch only when it differs --------------------

    async def _ghl_change(self, context: EventContext, contact_id: str) -> None:
        shown = self._shown(context.job)
        # GHL webhooks carry no dateUpdated and may omit fields: the current record is the truth. A
        # backfill's listing of a contact not linked yet is as good, and spares the read.
        await self._sync(
            context,
            Side.GHL,
            contact_id,
            lambda: self._fetch(context.upstreams, Side.GHL, contact_id),
            first_seen=self.listed(context.job.payload.get("listed"), Side.GHL),
            shown=shown,
        )

    @staticmethod
    def _unchanged(job: Job, link: Link, shown: Observed | None) -> bool:
        """Whether the event body shows the linked contact just as it was last synced, and no newer
        than the link has seen: an echo of the service's own write, or a change to unmapped fields.
        Such an event is settled without the link's lease, since it changes nothing.

        Only a lone event's body may stand for the contact: of several coalesced ones, the last to
        arrive need not be the newest (GHL does not promise order). GHL's bodies carry no time."""
        if shown is None or job.superseded or link.state != LinkState.LINKED:
            return False
        if mapping.fingerprint(shown.fields) != link.synced_hash:
            return False
        if shown.side is Side.GHL:
            return True
        latest: datetime | None = link.rankr_modified_at
        return latest is not None and shown.modified_at is not None and shown.modified_at <= latest

    async def _fetch(self, upstreams: Upstreams, side: Side, record_id: str) -> Observed | None:
        """The record as its side holds it now (one API read), or None when it no longer exists."""
        if side is Side.GHL:
            ghl = await upstreams.ghl.get_contact(record_id)
            return None if ghl is None else self.from_ghl(ghl, current=True)
        rankr = await upstreams.rankr.get_contact(record_id)
        return None if rankr is None else self.from_rankr(rankr, current=True)

    def from_ghl(self, ghl: GhlContact, *, current: bool) -> Observed:
        fields = mapping.from_ghl(ghl, self._maps)
        modified = parse_instant(ghl.date_updated)
        return Observed(Side.GHL, ghl.id, modified, fields, current=current, source=ghl.source)

    def from_rankr(self, rankr: RankrContact, *, current: bool) -> Observed:
        fields = mapping.from_rankr(rankr, self._maps)
        return Observed(Side.RANKR, rankr.contact_id, rankr.last_modified, fields, current=current)

    def listed(self, wire: Any, side: Side) -> Observed | None:
        """A record as a backfill's listing showed it (a synthetic event's ``listed``), if it is there."""
        if not isinstance(wire, dict):
            return None
        if side is Side.GHL:
            return self.from_ghl(GhlContact.model_validate(wire), current=False)
        return self.from_rankr(RankrContact.model_validate(wire), current=False)

    # --- create or update --------------------------------------------------------------------------

    async def _sync(
        self,
        context: EventContext,
        side: Side,
        record_id: str,
        observe: Callable[[], Awaitable[Observed | None]],
        *,
        first_seen: Observed | None = None,
        shown: Observed | None = None,
    ) -> None:
        """Create or update the record's counterpart from the state ``observe`` returns (or, for a
        record not linked yet, ``first_seen`` when given); ``shown``: the state the event's body
        shows, which settles an echo at once (``_unchanged``)."""
        async with autocommit(self._sessions) as session:
            link, in_flight = await links.find_with_pending(
                session, context.connection.id, KIND, side, record_id
            )
        if link is not None and self._unchanged(context.job, link, shown):
            await self.settle(context, Settlement(note=UNCHANGED))
            return
        if link is None:
            # The body of an echo of a create still in flight says whom it is about, so it waits
            # without a read (a body that shows no email or phone is read first: GHL may omit them).
            if shown is not None and any(mapping.match_keys(shown.fields)):
                self._wait_for_create(in_flight, shown)
            seen = first_seen or await observe()
            if seen is None:
                await self.settle_gone(context, side, record_id)
                return
            refused = self._admitted(seen)
            if refused is not None:
                await self.settle(context, Settlement(note=f"not synced: {refused}"))
                return
            self._wait_for_create(in_flight, seen)
            link = await self.claim_new(context, seen.side, seen.record_id, seen.fields)
            await self._create(context, seen, link)
            return

        async def apply(link: Link) -> None:
            # Observe only now, holding the lease: a state read before it could predate the writes of
            # the job that held the lease until now, and applying it would undo them.
            seen = await observe()
            if seen is None:
                await self.settle_gone(context, side, record_id, link)
            elif link.state == LinkState.PENDING:
                # An earlier attempt began the create and did not finish: finish it (idempotently).
                await self._create(context, seen, link)
            else:
                await self._update(context, seen, link)

        await self.leased(context, link, apply)

    def _wait_for_create(self, in_flight: list[Link], seen: Observed) -> None:
        """``Deferred`` when ``seen`` may be the echo of one of the creates ``in_flight`` toward its
        side: wait until it finishes and links both records; poll slowly when its worker is not at it
        right now (it is waiting to retry)."""
        candidates = [pending for pending in in_flight if self._may_be_echo(pending, seen)]
        if candidates:
            delay = self.in_flight_delay(candidates)
            raise Deferred("a create toward this side is in flight; this may be its echo", delay)

    def _may_be_echo(self, pending: Link, seen: Observed) -> bool:
        snapshot = pending.snapshot or {}
        email, phone = mapping.match_keys(seen.fields)
        if email is None and phone is None:
            # Nothing to recognise the person by: any create in flight could be this one.
            return True
        return (
            (email is not None and email == pending.match_email)
            or (phone is not None and phone == pending.match_phone)
            or mapping.fingerprint(seen.fields) == mapping.fingerprint(snapshot)
        )

    async def _create(self, context: EventContext, seen: Observed, link: Link) -> None:
        await self.creating(context, link, self._create_and_link(context, seen, link))

    async def _create_and_link(self, context: EventContext, seen: Observed, link: Link) -> None:
        target = seen.side.other
        email, phone = mapping.match_keys(seen.fields)
        if target is Side.RANKR:
            phone = None  # Rankr recognises a contact by its email only; GHL by email or phone
        async with autocommit(self._sessions) as session:
            clashes = [
                other
                for other in await links.find_by_match(session, context.connection.id, KIND, email, phone)
                if other.id != link.id and getattr(other, f"{target.value}_id") is not None
            ]
        if clashes:
            other = clashes[0]
            raise LinkConflictError(
                f"{target.value} contact {getattr(other, f'{target.value}_id')} shares this contact's "
                f"email or phone and is already linked to {seen.side.value} contact "
                f"{getattr(other, f'{seen.side.value}_id')}; merge them by hand"
            )
        result = Settlement(link_id=link.id, synced={target.inbound})
        if target is Side.GHL:
            target_id, target_fields, target_modified = await self._create_in_ghl(context, seen, link, result)
        else:
            target_id, target_fields, target_modified = await self._create_in_rankr(
                context, seen, link, result
            )
        # The target may hold values the origin lacks (it matched an existing record): bring them back
        # so both sides agree. Never clear anything on the origin this way.
        back = self.writable(mapping.fills(target_fields, seen.fields), seen.side)
        origin_modified = seen.modified_at
        if back:
            written_at, back = await self._update_side(
                context, seen.side, seen.record_id, back, seen.fields, link, result
            )
            origin_modified = newest(origin_modified, written_at)
        values: dict[str, Any] = {
            "state": LinkState.LINKED,
            f"{target.value}_id": target_id,
            modified_column(target): target_modified,
            modified_column(seen.side): origin_modified,
            "synced_at": self._clock(),
            # What both sides hold now. Where the target dropped a value the origin has, the target's
            # emptiness is recorded, so a later target event can never clear the origin's value.
            **snapshot_values({**seen.fields, **target_fields}),
        }
        result.link_values = values
        await self.settle(context, result)

    async def _ensure_unlinked(self, connection: Connection, side: Side, record_id: str, link: Link) -> None:
        """A create that found an existing record may link to it only if no other link has it (a
        record just created is linked nowhere; the unique constraints on links back both)."""
        async with autocommit(self._sessions) as session:
            other = await links.find(session, connection.id, KIND, side, record_id)
        if other is not None and other.id != link.id:
            raise LinkConflictError(
                f"{side.value} contact {record_id} matched this contact but is already linked to another"
                f" (link {other.id})"
            )

    async def _create_in_ghl(
        self, context: EventContext, seen: Observed, link: Link, result: Settlement
    ) -> tuple[str, Canonical, datetime | None]:
        fields = self.writable(mapping.present(seen.fields), Side.GHL)
        changes = mapping.describe(fields, None)
        upsert = context.upstreams.ghl.upsert_contact(mapping.ghl_body(fields, self._maps))
        contact, created = await self.write(context, link, Side.GHL, "create", changes, upsert)
        if not created:  # GHL matched a contact it had (by email or phone): is it linked already?
            await self._ensure_unlinked(context.connection, Side.GHL, contact.id, link)
        action = "create" if created else "link"
        result.audits.append(self.audit(link, Side.GHL, action, changes, written_id=contact.id))
        return contact.id, mapping.from_ghl(contact, self._maps), parse_instant(contact.date_updated)

    async def _create_in_rankr(
        self, context: EventContext, seen: Observed, link: Link, result: Settlement
    ) -> tuple[str, Canonical, datetime | None]:
        fields = self.writable(mapping.present(seen.fields), Side.RANKR)
        changes = mapping.describe(fields, None)
        create = context.upstreams.rankr.create_contact(mapping.rankr_body(fields, self._maps))
        created = await self.write(context, link, Side.RANKR, "create", changes, create)
        if created.contact is not None:
            contact = created.contact
            result.audits.append(
                self.audit(link, Side.RANKR, "create", changes, written_id=contact.contact_id)
            )
        else:
            # Rankr already has a contact with this email (409): link to it and bring it up to date.
            existing_id = created.existing_id
            assert existing_id is not None  # noqa: S101 - CreateResult holds one or the other
            await self._ensure_unlinked(context.connection, Side.RANKR, existing_id, link)
            existing = await context.upstreams.rankr.get_contact(existing_id)
            if existing is None:
                raise Deferred("Rankr named an existing contact that is gone; trying again", delay=2.0)
            current = mapping.from_rankr(existing, self._maps)
            update = mapping.changes(fields, current)
            changes = mapping.describe(update, current)
            contact = existing
            if update:
                put = context.upstreams.rankr.update_contact(
                    existing_id, mapping.rankr_body(update, self._maps)
                )
                contact = await self.write(context, link, Side.RANKR, "update", changes, put)
            result.audits.append(self.audit(link, Side.RANKR, "link", changes, written_id=existing_id))
        return contact.contact_id, mapping.from_rankr(contact, self._maps), contact.last_modified

    async def _update_side(
        self,
        context: EventContext,
        side: Side,
        record_id: str,
        fields: Canonical,
        before: Canonical | None,
        link: Link,
        result: Settlement,
    ) -> tuple[datetime | None, Canonical]:
        """Write changed fields to one side; returns its new modification time and what was written."""
        if side is Side.GHL:
            written, applied = await self._write_ghl(context, record_id, fields, before, link, result)
            modified = parse_instant(written.date_updated) if written is not None else None
        else:
            put = context.upstreams.rankr.update_contact(record_id, mapping.rankr_body(fields, self._maps))
            changes = mapping.describe(fields, before)
            contact = await self.write(context, link, side, "update", changes, put)
            applied, modified = fields, contact.last_modified
        if applied:
            result.audits.append(self.audit(link, side, "update", mapping.describe(applied, before)))
            result.synced.add(side.inbound)
        return modified, applied

    async def _write_ghl(
        self,
        context: EventContext,
        record_id: str,
        fields: Canonical,
        before: Canonical | None,
        link: Link,
        result: Settlement,
    ) -> tuple[GhlContact | None, Canonical]:
        """PUT what GHL's update endpoint takes; ``companyName`` goes through a confirmed upsert."""
        rest = {name: value for name, value in fields.items() if name != COMPANY}
        written: GhlContact | None = None
        if rest:
            put = context.upstreams.ghl.update_contact(record_id, mapping.ghl_body(rest, self._maps))
            changes = mapping.describe(rest, before)
            written = await self.write(context, link, Side.GHL, "update", changes, put)
        if COMPANY not in fields:
            return written, rest
        after = {**(before or {}), **fields}
        changes = mapping.describe({COMPANY: fields[COMPANY]}, before)
        upsert = context.upstreams.ghl.set_company_name(
            record_id, fields[COMPANY], email=after.get("email"), phone=after.get("phone")
        )
        company = await self.write(context, link, Side.GHL, "update", changes, upsert)
        if company is None:
            result.audits.append(
                self.audit(
                    link,
                    Side.GHL,
                    "update",
                    changes,
                    result="error",
                    detail="GHL sets companyName only by upsert, and this contact has no email or phone "
                    "that identifies it; the company name was not written",
                )
            )
            return written, rest
        return company, fields

    async def _update(self, context: EventContext, seen: Observed, link: Link) -> None:
        fetch = partial(self._fetch, context.upstreams, seen.side, seen.record_id)
        found = await self.current_change(context, link, seen, fetch)
        if found is None:
            return
        seen, update, values = found
        target = seen.side.other
        target_id = getattr(link, f"{target.value}_id")
        result = Settlement(link_id=link.id)
        try:
            target_modified, update = await self._update_side(
                context, target, target_id, update, link.snapshot, link, result
            )
        except UpstreamNotFound:
            # Deleted on the other side meanwhile.
            await self.settle_gone(context, target, target_id, link)
            return
        values.update(self.synced_values(link, target, target_modified, {**(link.snapshot or {}), **update}))
        result.link_values = values
        await self.settle(context, result)

    # --- deletions -----------------------------------------------------------------------------------

    async def settle_delete(self, context: EventContext, side: Side, link: Link) -> None:
        target = side.other
        target_id: str | None = getattr(link, f"{target.value}_id")
        result = Settlement(link_id=link.id, synced={target.inbound})
        if target_id is None:
            result.link_values = {"state": LinkState.DELETED}
            result.children_state = LinkState.DELETED
            result.note = "the contact was never created on the other side"
            await self.settle(context, result)
            return
        if self._delete_mode == "delete":
            upstreams = context.upstreams
            call = (
                upstreams.ghl.delete_contact(target_id)
                if target is Side.GHL
                else upstreams.rankr.delete_contact(target_id)
            )
            await self.write(context, link, target, "delete", {}, call)
            result.audits.append(self.audit(link, target, "delete", {}))
            # Both products delete a contact's tasks and notes with it: their links end too.
            result.link_values = {"state": LinkState.DELETED}
            result.children_state = LinkState.DELETED
        else:
            await self._tag_unlinked(context, target, target_id, link)
            result.audits.append(self.audit(link, target, "unlink", {"tags": {"add": self._unlink_tag}}))
            # The kept contact keeps its tasks and notes, which stop syncing with it.
            result.link_values = {"state": LinkState.UNLINKED}
            result.children_state = LinkState.UNLINKED
        await self.settle(context, result)

    async def _tag_unlinked(self, context: EventContext, target: Side, target_id: str, link: Link) -> None:
        """Keep the record on the other side, tagged so people can see it lost its counterpart."""
        tag = mapping.tags([self._unlink_tag])
        changes = {"tags": {"add": self._unlink_tag}}
        if target is Side.GHL:
            call = context.upstreams.ghl.add_tags(target_id, tag)
            with suppress(UpstreamNotFound):
                await self.write(context, link, target, "unlink", changes, call)
            return
        current = await context.upstreams.rankr.get_contact(target_id)
        if current is None:
            return
        merged = mapping.tags([*current.tags, *tag])
        await self.write(
            context,
            link,
            target,
            "unlink",
            changes,
            context.upstreams.rankr.update_contact(target_id, {"tags": merged}),
        )
