"""The field-by-field merge rule (app/sync/merge.py), pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.sync.merge import merge

EARLY = datetime(2026, 1, 1, tzinfo=UTC)
LATE = EARLY + timedelta(minutes=5)


def test_first_link_fills_unions_tags_and_takes_the_newer_side_on_differing_values() -> None:
    result = merge(
        {"email": "a@x", "firstName": "Ann", "companyName": "Co", "website": None, "tags": ["a"]},
        {"email": "a@x", "firstName": "Anne", "companyName": None, "website": "w.example", "tags": ["b"]},
        snapshot=None,
        rankr_at=EARLY,
        ghl_at=LATE,
        tie="rankr",
    )
    assert result.fields == {
        "email": "a@x",
        "firstName": "Anne",
        "companyName": "Co",
        "website": "w.example",
        "tags": ["a", "b"],
    }
    assert set(result.decisions) == {"firstName", "companyName", "website", "tags"}
    assert result.decisions["firstName"]["why"] == "first link; values differ, modified more recently in ghl"
    assert result.decisions["companyName"] == {
        "rankr": "Co",
        "ghl": None,
        "to": "Co",
        "why": "first link; only rankr has a value",
    }


def test_against_a_snapshot_one_sided_changes_win_and_both_sided_go_to_the_newer() -> None:
    snapshot = {"firstName": "Ann", "lastName": "Lee", "city": "Oslo", "tags": ["a", "b"]}
    result = merge(
        {"firstName": "Annie", "lastName": "Lee", "city": "Rome", "tags": ["a", "c"]},
        {"firstName": "Ann", "lastName": "Li", "city": "Bergen", "tags": ["b", "d"]},
        snapshot=snapshot,
        rankr_at=LATE,
        ghl_at=EARLY,
        tie="ghl",
    )
    assert result.fields["firstName"] == "Annie"  # only Rankr changed it
    assert result.decisions["firstName"]["why"] == "changed in rankr only"
    assert result.fields["lastName"] == "Li"  # only GHL changed it
    assert result.fields["city"] == "Rome"  # both changed; Rankr is newer
    # Tags changed on both: additions of both kept, removals of both applied.
    assert result.fields["tags"] == ["c", "d"]


def test_ties_go_to_the_configured_side_and_unknown_fields_are_never_decided() -> None:
    snapshot = {"city": "Oslo"}
    for tie, expected in (("rankr", "Rome"), ("ghl", "Bergen")):
        result = merge(
            {"city": "Rome", "ownerId": "usr_1"},
            {"city": "Bergen"},
            snapshot=snapshot,
            rankr_at=EARLY,
            ghl_at=EARLY,
            tie=tie,  # type: ignore[arg-type]
        )
        assert result.fields["city"] == expected
        assert (
            result.decisions["city"]["why"]
            == f"changed on both sides; same modification time; CONFLICT_TIE_WINNER={tie}"
        )
        assert "ownerId" not in result.decisions


def test_equal_values_need_no_decision() -> None:
    result = merge(
        {"tags": [], "phone": None},
        {"tags": None, "phone": None},
        snapshot=None,
        rankr_at=None,
        ghl_at=None,
        tie="rankr",
    )
    assert result.decisions == {}
