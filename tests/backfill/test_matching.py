"""The backfill's matching rule (app/backfill/matching.py), pure: staged records and links in memory."""

from __future__ import annotations

from itertools import count

from app.backfill.matching import Outcome, People, decide, same_person
from app.backfill.models import StagedContact
from app.sync.models import Link, LinkState

ids = count(1)


def staged(side: str, email: str | None = None, phone: str | None = None, **fields: str) -> StagedContact:
    number = next(ids)
    return StagedContact(
        id=number,
        side=side,
        record_id=f"{side}-{number}",
        fields={"email": email, **fields},
        match_email=email,
        match_phone=phone,
        outcome=None,
    )


def people(*records: StagedContact, links: dict[str, dict[str, Link]] | None = None) -> People:
    return People(links=links or {"rankr": {}, "ghl": {}}, staged=list(records), linked=[])


def test_same_person_by_email_or_by_phone_when_at_most_one_has_an_email() -> None:
    assert same_person("a@x", None, "a@x", None)
    assert same_person(None, "+1555", "b@x", "+1555")
    assert same_person("a@x", "+1555", None, "+1555")
    assert not same_person("a@x", "+1555", "b@x", "+1555")  # two emails: two people
    assert not same_person(None, None, None, None)


def test_the_oldest_undecided_record_of_the_other_side_is_the_pair() -> None:
    rankr = staged("rankr", "a@x", firstName="Ann")
    older, newer = staged("ghl", "a@x", firstName="Anne"), staged("ghl", "a@x")
    decision = decide(people(rankr, older, newer), rankr)
    assert decision.outcome is Outcome.PAIR
    assert decision.counterpart is older
    assert decision.counterpart_detail == f"rankr {rankr.record_id} (same email)"
    assert decision.report == (
        f"link rankr {rankr.record_id} <-> ghl {older.record_id} (same email); fields to merge: firstName"
    )


def test_a_record_on_one_side_only_is_created_on_the_other() -> None:
    record = staged("ghl", "solo@x")
    decision = decide(people(record, staged("rankr", "other@x")), record)
    assert (decision.outcome, decision.detail, decision.counterpart) == (Outcome.CREATE, "in rankr", None)


def test_a_person_claimed_already_is_a_duplicate_left_alone() -> None:
    first, second = staged("rankr", "a@x"), staged("rankr", "a@x")
    first.outcome = Outcome.CREATE
    decision = decide(people(first, second), second)
    assert decision.outcome is Outcome.DUPLICATE
    assert decision.detail == f"rankr {first.record_id}"
    assert decision.report is not None
    assert decision.report.startswith(f"duplicate rankr {second.record_id}")


def test_a_person_with_a_live_link_is_a_duplicate() -> None:
    record = staged("ghl", None, "+1555")
    decision = decide(
        People(links={"rankr": {}, "ghl": {}}, staged=[record], linked=[(7, None, "+1555")]), record
    )
    assert (decision.outcome, decision.detail) == (Outcome.DUPLICATE, "link 7")


def test_linked_records_are_left_as_they_are_and_ended_ones_alone() -> None:
    live, ended = staged("rankr", "a@x"), staged("rankr", "b@x")
    links = {
        "rankr": {
            live.record_id: Link(id=1, state=LinkState.LINKED),
            ended.record_id: Link(id=2, state=LinkState.DELETED),
        },
        "ghl": {},
    }
    assert decide(people(live, ended, links=links), live).outcome is Outcome.LINKED
    assert decide(people(live, ended, links=links), ended).outcome is Outcome.ENDED
