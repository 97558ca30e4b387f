"""What choosing the job's connection's maps adds to mapping a contact.

    python -m bench.field_maps_at [--rounds 20000]

The contact sync maps each contact with the maps of the event's GHL location (``ContactSync._maps``:
the location from the context the engine sets, the location's maps cached per handler). This times,
in the same run and in CPU time, ``mapping.from_rankr`` and ``mapping.ghl_body`` of one contact with
three custom fields through a plain attribute (the baseline, as before) and through ``_maps`` inside
``at_location``, for a location with its own custom fields, and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from app.integrations.rankr.schemas import RankrContact
from app.sync import mapping
from app.sync.base import at_location
from app.sync.contacts import ContactSync
from app.sync.mapping import FieldMaps

CONTACT = RankrContact.model_validate(
    {
        "contactId": "c_1",
        "accountId": "acct_1",
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "tags": ["lead"],
        "customFields": {"industry": "Looms", "size": "12", "region": "west"},
        "lastModified": "2026-12-06T06:00:00Z",
    }
)
MAPS = FieldMaps(
    custom_fields={"industry": "ghl_industry", "size": "ghl_size"},
    located_custom_fields={"LocA": {"region": "ghl_region"}},
)


class Plain:
    def __init__(self, maps: FieldMaps) -> None:
        self._maps = maps


def cpu_per_round(holder: Any, rounds: int) -> float:
    started = time.process_time()
    for _ in range(rounds):
        fields = mapping.from_rankr(CONTACT, holder._maps)
        mapping.ghl_body(fields, holder._maps)
    return (time.process_time() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20_000)
    rounds = parser.parse_args().rounds
    handler = ContactSync.__new__(ContactSync)
    handler._all_maps, handler._maps_at = MAPS, {}
    plain = Plain(MAPS.at("LocA"))  # the same fields, without the choice
    with at_location("LocA"):
        cpu_per_round(handler, 100)
        cpu_per_round(plain, 100)
        baseline = cpu_per_round(plain, rounds)
        located = cpu_per_round(handler, rounds)
    result = {"rounds": rounds, "plain_us": round(baseline, 2), "located_us": round(located, 2)}
    print(json.dumps({**result, "cpu_ratio": round(located / baseline, 3)}))


if __name__ == "__main__":
    main()
