"""Which tasks and notes of one linked contact are the same record on both sides. Pure: no I/O.

Used by the backfill and by reconciliation (``repair.ChildRepair``) on the records of one contact
that no link holds yet: a task is the same as one of the other side with the same title and due
date, a note one with the same body (text compared as the mapping normalises it). Equal records
pair one to one, in the order the sides list them; what is left exists on one side only.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.sync.base import Observed
from app.sync.models import Kind


def match_key(kind: str, fields: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two records of ``kind`` the same: title and due date, or the body."""
    if kind == Kind.TASK:
        return (fields.get("title"), fields.get("dueDate"))
    return (fields.get("body"),)


@dataclass
class Pairing:
    pairs: list[tuple[Observed, Observed]] = field(default_factory=list)  # (rankr, ghl)
    rankr_only: list[Observed] = field(default_factory=list)
    ghl_only: list[Observed] = field(default_factory=list)


def pair_up(kind: str, rankr: Sequence[Observed], ghl: Sequence[Observed]) -> Pairing:
    """Pair the unlinked records of both sides by ``match_key``, one to one, in listing order."""
    waiting: dict[tuple[Any, ...], deque[Observed]] = defaultdict(deque)
    for record in ghl:
        waiting[match_key(kind, record.fields)].append(record)
    result = Pairing()
    for record in rankr:
        same = waiting.get(match_key(kind, record.fields))
        if same:
            result.pairs.append((record, same.popleft()))
        else:
            result.rankr_only.append(record)
    paired = {id(g) for _, g in result.pairs}
    result.ghl_only = [record for record in ghl if id(record) not in paired]
    return result
