"""A world of contacts for backfill tests: people only in Rankr or only in GHL, the same people on
both sides by email (spelled differently) or by phone (written differently), and duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class World:
    """What was seeded, by kind of person."""

    rankr_only: int
    ghl_only: int
    by_email: int
    by_phone: int
    duplicate_groups: int  # two Rankr contacts with one phone and no email, nobody in GHL
    duplicates_with_ghl: int  # the same, with one GHL contact of that phone

    @property
    def people(self) -> int:
        return (
            self.rankr_only + self.ghl_only + self.by_email + self.by_phone
            + self.duplicate_groups + self.duplicates_with_ghl
        )  # fmt: skip

    @property
    def duplicates(self) -> int:
        return self.duplicate_groups + self.duplicates_with_ghl


def phone(group: int, i: int) -> str:
    return f"+1{group}55{i:07d}"


def contacts_of(world: World) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The contacts to seed (Rankr's, GHL's): seed Rankr first, GHL later, so that where both hold a
    differing value, GHL's is the newer."""
    rankr: list[dict[str, Any]] = []
    ghl: list[dict[str, Any]] = []
    for i in range(world.rankr_only):
        rankr.append({"email": f"r{i}@rankr.example", "phone": phone(2, i), "firstName": f"R{i}"})
    for i in range(world.ghl_only):
        ghl.append({"email": f"g{i}@ghl.example", "phone": phone(3, i), "firstName": f"G{i}"})
    for i in range(world.by_email):
        rankr.append(
            {
                "email": f"both{i}@example.com",
                "firstName": "Old",
                "companyName": f"Co {i}",
                "tags": ["from-rankr"],
            }
        )
        ghl.append(
            {
                "email": f"Both{i}@Example.com",
                "firstName": f"New{i}",
                "website": f"https://{i}.example",
                "tags": ["from-ghl"],
            }
        )
    for i in range(world.by_phone):
        # GHL is given the national form (it stores E.164): the same number once normalised.
        national = phone(4, i)[2:]
        rankr.append({"phone": phone(4, i), "lastName": f"P{i}"})
        ghl.append(
            {"phone": f"({national[:3]}) {national[3:6]}-{national[6:]}", "lastName": f"P{i}", "city": "Oslo"}
        )
    for i in range(world.duplicate_groups):
        rankr += [{"phone": phone(5, i), "firstName": "First"}, {"phone": phone(5, i), "firstName": "Second"}]
    for i in range(world.duplicates_with_ghl):
        rankr += [{"phone": phone(6, i), "firstName": "First"}, {"phone": phone(6, i), "firstName": "Second"}]
        ghl.append({"phone": phone(6, i), "lastName": "InGhl"})
    return rankr, ghl
