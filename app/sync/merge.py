"""Field-by-field merge of one person's two records. Pure: no I/O.

Used when both sides may hold changes: the backfill links two records that were never synced (no
snapshot), and reconciliation repairs a link whose records both moved since the last sync (the
link's snapshot is the common ancestor). For each canonical field both sides know:

- equal values: nothing to decide;
- with a snapshot: a field changed on one side only takes that side's value; changed on both, the
  side modified more recently wins (``lastModified`` / ``dateUpdated``), a tie goes to the
  configured side (``CONFLICT_TIE_WINNER``); tags changed on both merge as sets (what either side
  added is kept, what either side removed goes);
- without a snapshot (first link): a value only one side has is copied to the other (nothing is
  ever cleared); tags are united; differing values go to the more recently modified side, ties to
  the configured side.

A field only one side knows (an unmapped custom field or user) is never decided or written.
Every decision is returned, for the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from app.sync import mapping
from app.sync.mapping import TAGS, Canonical

Winner = Literal["rankr", "ghl"]


@dataclass(slots=True)
class Merge:
    """The merged fields and, per field that differed, who won and why."""

    fields: Canonical = field(default_factory=dict)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)


def _newer(rankr_at: datetime | None, ghl_at: datetime | None, tie: Winner) -> tuple[Winner, str]:
    if rankr_at is not None and (ghl_at is None or rankr_at > ghl_at):
        return "rankr", "modified more recently in rankr"
    if ghl_at is not None and (rankr_at is None or ghl_at > rankr_at):
        return "ghl", "modified more recently in ghl"
    if rankr_at is None:  # neither side tells when (GHL keeps no time for tasks and notes)
        return tie, f"no modification time to compare; CONFLICT_TIE_WINNER={tie}"
    return tie, f"same modification time; CONFLICT_TIE_WINNER={tie}"


def merge(
    rankr: Canonical,
    ghl: Canonical,
    *,
    snapshot: Canonical | None,
    rankr_at: datetime | None,
    ghl_at: datetime | None,
    tie: Winner,
) -> Merge:
    result = Merge()
    for name in sorted(rankr.keys() | ghl.keys()):
        if name not in rankr or name not in ghl:
            result.fields[name] = rankr.get(name) if name in rankr else ghl.get(name)
            continue
        ours, theirs = rankr[name], ghl[name]
        if mapping.same(ours, theirs):
            result.fields[name] = ours
            continue
        value, reason = _merged_value(name, ours, theirs, snapshot, rankr_at, ghl_at, tie)
        result.fields[name] = value
        result.decisions[name] = {"rankr": ours, "ghl": theirs, "to": value, "why": reason}
    return result


def _merged_value(
    name: str,
    ours: Any,
    theirs: Any,
    snapshot: Canonical | None,
    rankr_at: datetime | None,
    ghl_at: datetime | None,
    tie: Winner,
) -> tuple[Any, str]:
    if snapshot is not None:
        before = snapshot.get(name)
        rankr_changed, ghl_changed = not mapping.same(ours, before), not mapping.same(theirs, before)
        if rankr_changed and not ghl_changed:
            return ours, "changed in rankr only"
        if ghl_changed and not rankr_changed:
            return theirs, "changed in ghl only"
        if name == TAGS:
            old = set(before or [])
            kept = (old | set(ours) | set(theirs)) - (old - set(ours)) - (old - set(theirs))
            return sorted(kept), "changed on both sides; tags merged as sets"
    elif name == TAGS:
        return sorted(set(ours or []) | set(theirs or [])), "first link; tags united"
    elif mapping.same(ours, None):
        return theirs, "first link; only ghl has a value"
    elif mapping.same(theirs, None):
        return ours, "first link; only rankr has a value"
    winner, reason = _newer(rankr_at, ghl_at, tie)
    prefix = "changed on both sides; " if snapshot is not None else "first link; values differ, "
    return (ours if winner == "rankr" else theirs), prefix + reason
