"""Each link lookup has one right index, with or without statistics (migration 0009).

A fresh table, or a server with autovacuum off, has no statistics; Postgres then rated the
``(connection_id, kind)`` prefix that four indexes shared as highly selective and took any of them
for a lookup by one id, walking every link of the connection (milliseconds per event as links grow).
"""

from __future__ import annotations

import pytest
from sqlalchemy.dialects.postgresql import asyncpg

from app.sync import repository
from tests.support.databases import PostgresSchema, psql

pytestmark = pytest.mark.postgres

# 5,000 links of one connection.
FILL = """
INSERT INTO connections (id, name, rankr_account_id, ghl_location_id, status, created_at, updated_at)
VALUES (1, 'c', 'acct', 'loc', 'active', now(), now());
INSERT INTO links (
    connection_id, kind, rankr_id, ghl_id, state, match_email, match_phone, created_at, updated_at
)
SELECT 1, 'contact', 'r' || g, 'g' || g, 'linked', 'p' || g || '@example.com', '+1555' || g, now(), now()
FROM generate_series(1, 5000) g;
"""


@pytest.mark.parametrize(
    ("where", "index"),
    [
        ("ghl_id = 'g42'", "uq_links_connection_id_kind_ghl_id"),
        ("rankr_id = 'r42'", "uq_links_connection_id_kind_rankr_id"),
        ("match_email = 'p42@example.com'", "ix_links_match_email"),
        ("match_phone = '+155542'", "ix_links_match_phone"),
    ],
)
def test_a_lookup_by_one_key_uses_that_keys_index_without_statistics(
    postgres_schema: PostgresSchema, postgres_url: str, where: str, index: str
) -> None:
    in_schema = f"SET search_path TO {postgres_schema.name};"
    psql(f"{in_schema} {FILL}")
    lookup = f"SELECT * FROM links WHERE connection_id = 1 AND kind = 'contact' AND {where}"  # noqa: S608
    explained = psql(f"{in_schema} EXPLAIN {lookup}")
    assert f" using {index} on links" in explained.lower(), explained
    # Index Cond names the key: the lookup descends to it instead of filtering the connection's links.
    assert "Filter" not in explained, explained


# The lookups of links by id or key that events and claims run, as the service sends them, and the
# keys they look up. Each looks one id or key up at a time (an arm of a UNION ALL, a LATERAL lookup);
# an OR or IN list of them was planned on a nearly empty table as a walk of every link.
LOOKUPS = {
    "find_with_pending, rankr": (repository._find_with_pending("rankr", False), {"record_id": "r42"}),
    "find_with_pending, ghl, under a parent": (
        repository._find_with_pending("ghl", True),
        {"record_id": "g42", "parent_id": 7},
    ),
    "find_pair": (repository._FIND_PAIR, {"rankr_id": "r42", "ghl_id": "g42"}),
    "find_many": (repository._find_many("ghl", True), {"record_ids": ["g41", "g42"]}),
    "find_by_match": (
        repository._find_by_match(True, True),
        {"email": "p42@example.com", "phone": "+155542"},
    ),
}


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_a_plan_made_on_an_empty_table_looks_each_key_up_in_its_index(
    postgres_schema: PostgresSchema, lookup: str
) -> None:
    postgres_schema.empty()
    statement, keys = LOOKUPS[lookup]
    compiled = statement.params(connection_id=1, kind="contact", **keys).compile(
        dialect=asyncpg.dialect(paramstyle="numeric_dollar"), compile_kwargs={"render_postcompile": True}
    )
    arguments = ", ".join(_literal(compiled.params[name]) for name in compiled.positiontup or ())
    # The generic plan, made now on the empty table, is the one a prepared statement would keep.
    explained = psql(
        f"SET search_path TO {postgres_schema.name}; SET plan_cache_mode = force_generic_plan;"
        f" PREPARE lookup AS {compiled}; EXPLAIN EXECUTE lookup({arguments});"
    )
    conditions = [line.split("Index Cond: ", 1)[1] for line in explained.splitlines() if "Index Cond" in line]
    assert "Seq Scan" not in explained, explained
    assert conditions, explained
    for condition in conditions:
        assert not condition.startswith("((connection_id"), explained


def _literal(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    text = "{" + ",".join(value) + "}" if isinstance(value, list) else str(value)
    return "'" + text.replace("'", "''") + "'"
