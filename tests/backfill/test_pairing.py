"""Which unlinked tasks and notes of a contact are the same on both sides (app/sync/pairing.py), pure."""

from __future__ import annotations

from app.sync.base import Observed, Side
from app.sync.pairing import pair_up

DUE = "2026-12-01T09:30:00.000Z"


def task(side: Side, record_id: str, title: str, due: str | None = DUE, **fields: object) -> Observed:
    return Observed(side, record_id, None, {"title": title, "dueDate": due, **fields}, current=True)


def note(side: Side, record_id: str, body: str) -> Observed:
    return Observed(side, record_id, None, {"body": body}, current=True)


def ids(records: list[Observed]) -> list[str]:
    return [record.record_id for record in records]


def test_tasks_pair_on_title_and_due_date_and_nothing_else() -> None:
    rankr = [
        task(Side.RANKR, "r1", "Call"),
        task(Side.RANKR, "r2", "Call", due=None),
        task(Side.RANKR, "r3", "Quote"),
    ]
    ghl = [
        task(Side.GHL, "g1", "Call", completed=True, description="x"),
        task(Side.GHL, "g2", "Quote", due="2027-01-01T00:00:00.000Z"),
    ]
    result = pair_up("task", rankr, ghl)
    assert [(r.record_id, g.record_id) for r, g in result.pairs] == [("r1", "g1")]
    assert ids(result.rankr_only) == ["r2", "r3"]
    assert ids(result.ghl_only) == ["g2"]


def test_equal_records_pair_one_to_one_in_listing_order() -> None:
    rankr = [note(Side.RANKR, "r1", "Hi"), note(Side.RANKR, "r2", "Hi"), note(Side.RANKR, "r3", "Hi")]
    ghl = [note(Side.GHL, "g1", "Hi"), note(Side.GHL, "g2", "Hi")]
    result = pair_up("note", rankr, ghl)
    assert [(r.record_id, g.record_id) for r, g in result.pairs] == [("r1", "g1"), ("r2", "g2")]
    assert ids(result.rankr_only) == ["r3"]
    assert result.ghl_only == []


def test_nothing_on_either_side_pairs_nothing() -> None:
    result = pair_up("note", [], [note(Side.GHL, "g1", "Only here")])
    assert (result.pairs, result.rankr_only, ids(result.ghl_only)) == ([], [], ["g1"])
