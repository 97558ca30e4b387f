"""The backfill's matching rule, as pure functions of what was read for a batch of staged records.

Nothing here reads or writes the database: ``People`` is read once per batch (``repository.people``)
and deciding a record only looks at it and at the staged records it holds, which deciding changes in
place, so each record of a batch is decided as it would be one after the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.backfill.models import StagedContact
from app.sync import mapping
from app.sync.models import Link, LinkState

# At most this many records of one person are looked at (more would be a data problem of its own).
PERSON_RECORDS = 50


class Outcome(StrEnum):
    """What was decided for a staged record (``staged_contacts.outcome``)."""

    PAIR = "pair"  # linked to its counterpart (``paired``), their fields merged
    PAIRED = "paired"
    CREATE = "create"  # exists on one side only: created on the other
    LINKED = "linked"  # already linked: nothing to do
    ENDED = "ended"  # deleted or unlinked earlier: left alone
    DUPLICATE = "duplicate"  # another record already stands for the same person: left alone
    UNCHANGED = "unchanged"  # reconciliation: linked and as synced
    REPAIR = "repair"  # reconciliation: linked and drifted


# The outcomes that claim a person for the record decided.
CLAIMING = (Outcome.PAIR, Outcome.PAIRED, Outcome.CREATE)


def same_person(
    email: str | None, phone: str | None, other_email: str | None, other_phone: str | None
) -> bool:
    """The same normalised email, or the same normalised phone when at most one of the two records
    has an email (two different emails are two people)."""
    if email and other_email == email:
        return True
    return bool(phone) and other_phone == phone and (other_email is None if email else True)


@dataclass
class People:
    """What deciding a batch of staged records looks at: the records' links (by side, then id), and
    the staged records and live links (id, email, phone) of the same people."""

    links: dict[str, dict[str, Link]]
    staged: Sequence[StagedContact]
    linked: Sequence[tuple[int, str | None, str | None]]

    def oldest(
        self, record: StagedContact, *, side: str | None, outcomes: Sequence[str] | None
    ) -> StagedContact | None:
        """The oldest other staged record of the same person (on ``side``; with one of ``outcomes``,
        or undecided when ``outcomes`` is None), among the first PERSON_RECORDS of that person."""
        email, phone, looked = record.match_email, record.match_phone, 0
        for other in self.staged:
            if other.id == record.id or (side is not None and other.side != side):
                continue
            if not same_person(email, phone, other.match_email, other.match_phone):
                continue
            if (other.outcome is None) if outcomes is None else (other.outcome in outcomes):
                return other
            looked += 1
            if looked == PERSON_RECORDS:
                return None
        return None

    def claimed(self, record: StagedContact) -> str | None:
        """Who already stands for this record's person, if anyone (see rule 2 of ``decide``)."""
        staged = self.oldest(record, side=None, outcomes=CLAIMING)
        if staged is not None:
            return f"{staged.side} {staged.record_id}"
        linked = self.linked_to(record)
        return f"link {linked}" if linked is not None else None

    def linked_to(self, record: StagedContact) -> int | None:
        """The live link of this record's person, if there is one."""
        for link_id, email, phone in self.linked:
            if same_person(record.match_email, record.match_phone, email, phone):
                return link_id
        return None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    detail: str
    # A pair's record on the other side, decided ``paired`` with ``counterpart_detail``.
    counterpart: StagedContact | None = None
    counterpart_detail: str = ""
    # The line a dry run reports, if any.
    report: str | None = None


def decide(people: People, record: StagedContact) -> Decision:
    """The matching rule, per staged record (Rankr's are decided first, oldest first):

    1. already linked (by a webhook, or an earlier backfill): nothing to do (``linked``);
       deleted or unlinked earlier: left alone (``ended``);
    2. the same person (same normalised email; or same normalised phone when at most one of the
       two has an email) is already claimed by another record of either side, linked or decided
       in this run: a duplicate, left alone and reported (``duplicate``);
    3. the oldest undecided record of the other side that is the same person: the two are linked
       and their fields merged (``pair``/``paired``);
    4. otherwise it exists on one side only and is created on the other (``create``).
    """
    link = people.links[record.side].get(record.record_id)
    if link is not None:
        live = link.state in (LinkState.LINKED, LinkState.PENDING)
        return Decision(Outcome.LINKED if live else Outcome.ENDED, f"link {link.id}")
    claimed = people.claimed(record)
    if claimed is not None:
        report = f"duplicate {record.side} {record.record_id}: same person as {claimed}; left alone"
        return Decision(Outcome.DUPLICATE, claimed, report=report)
    other = "ghl" if record.side == "rankr" else "rankr"
    counterpart = people.oldest(record, side=other, outcomes=None)
    if counterpart is None:
        return Decision(
            Outcome.CREATE, f"in {other}", report=f"create in {other}: {record.side} {record.record_id}"
        )
    rankr, ghl = (record, counterpart) if record.side == "rankr" else (counterpart, record)
    how = "email" if record.match_email and record.match_email == counterpart.match_email else "phone"
    fields = sorted(mapping.changes(rankr.fields, ghl.fields) | mapping.changes(ghl.fields, rankr.fields))
    return Decision(
        Outcome.PAIR,
        f"{other} {counterpart.record_id} (same {how})",
        counterpart=counterpart,
        counterpart_detail=f"{record.side} {record.record_id} (same {how})",
        report=(
            f"link rankr {rankr.record_id} <-> ghl {ghl.record_id} (same {how}); "
            f"fields to merge: {', '.join(fields) or 'none'}"
        ),
    )
