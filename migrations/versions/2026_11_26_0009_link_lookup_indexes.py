"""link lookup indexes lead with the id or key they look up, not with (connection_id, kind)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 22:00:00.000000

Four indexes of ``links`` led with ``(connection_id, kind)``. Without statistics (a fresh table,
or a server with autovacuum off) Postgres rates that prefix as highly selective, and every one of
them costs the same for a lookup by one id: it took whichever, so a lookup by GHL id could walk
every link of the connection through the phone index and filter (4 ms at 37,000 links, against
0.04 ms). Leading with the id or key leaves one right index for each lookup.

On Postgres the unique constraints are swapped for unique indexes built ``CONCURRENTLY`` (the
table holds every synced record) and keep their names. On SQLite they stay as created: changing
them rebuilds the table, which ``audit_entries`` and ``links`` itself reference, and SQLite's
planner picks the unique index for these lookups without statistics. The match indexes are
rebuilt on both.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX = ("connection_id", "kind")
UNIQUE = {"uq_links_connection_id_kind_rankr_id": "rankr_id", "uq_links_connection_id_kind_ghl_id": "ghl_id"}
MATCH = {"ix_links_match_email": "match_email", "ix_links_match_phone": "match_phone"}


def _columns(key: str, key_first: bool) -> list[str]:
    return [key, *PREFIX] if key_first else [*PREFIX, key]


def _rebuild(key_first: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("links") as batch:
            for name, key in MATCH.items():
                batch.drop_index(name)
                batch.create_index(name, _columns(key, key_first), unique=False)
        return
    with op.get_context().autocommit_block():
        for name, key in UNIQUE.items():
            new, columns = f"{name}_new", ", ".join(_columns(key, key_first))
            op.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {new} ON links ({columns})")
            # Renames the index to the constraint's name; one short exclusive lock.
            op.execute(
                f"ALTER TABLE links DROP CONSTRAINT {name}, ADD CONSTRAINT {name} UNIQUE USING INDEX {new}"
            )
        for name, key in MATCH.items():
            new, columns = f"{name}_new", ", ".join(_columns(key, key_first))
            op.execute(f"CREATE INDEX CONCURRENTLY {new} ON links ({columns})")
            op.execute(f"DROP INDEX CONCURRENTLY {name}")
            op.execute(f"ALTER INDEX {new} RENAME TO {name}")


def upgrade() -> None:
    _rebuild(key_first=True)


def downgrade() -> None:
    _rebuild(key_first=False)
