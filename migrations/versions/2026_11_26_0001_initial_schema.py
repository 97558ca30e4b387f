"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:42:32.133780
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Column types spelled out here, not imported from the app, so this migration never changes.
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rankr_account_id", sa.String(length=255), nullable=False),
        sa.Column("ghl_location_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("last_synced_to_ghl_at", TIMESTAMP, nullable=True),
        sa.Column("last_synced_to_rankr_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("status IN ('active', 'disabled')", name=op.f("ck_connections_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
        sa.UniqueConstraint("ghl_location_id", name=op.f("uq_connections_ghl_location_id")),
        sa.UniqueConstraint("rankr_account_id", name=op.f("uq_connections_rankr_account_id")),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("account_key", sa.String(length=255), nullable=False),
        sa.Column("ordering_key", sa.String(length=600), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("leased_by", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'retrying', 'done', 'skipped', 'dead')",
            name=op.f("ck_webhook_events_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("source", "event_id", name=op.f("uq_webhook_events_source_event_id")),
    )
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_events_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_webhook_events_ordering", ["ordering_key", "id"], unique=False)

    op.create_table(
        "links",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rankr_id", sa.String(length=255), nullable=True),
        sa.Column("ghl_id", sa.String(length=255), nullable=True),
        sa.Column("parent_id", BIGID, nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rankr_modified_at", TIMESTAMP, nullable=True),
        sa.Column("ghl_modified_at", TIMESTAMP, nullable=True),
        sa.Column("snapshot", JSON, nullable=True),
        sa.Column("synced_hash", sa.String(length=64), nullable=True),
        sa.Column("match_email", sa.String(length=320), nullable=True),
        sa.Column("match_phone", sa.String(length=32), nullable=True),
        sa.Column("lease_owner", sa.String(length=96), nullable=True),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("synced_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("kind IN ('contact', 'task', 'note')", name=op.f("ck_links_kind")),
        sa.CheckConstraint(
            "state IN ('pending', 'linked', 'deleted', 'unlinked')", name=op.f("ck_links_state")
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_links_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["links.id"], name=op.f("fk_links_parent_id_links"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint(
            "connection_id", "kind", "ghl_id", name=op.f("uq_links_connection_id_kind_ghl_id")
        ),
        sa.UniqueConstraint(
            "connection_id", "kind", "rankr_id", name=op.f("uq_links_connection_id_kind_rankr_id")
        ),
    )
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.create_index("ix_links_match_email", ["connection_id", "kind", "match_email"], unique=False)
        batch_op.create_index("ix_links_match_phone", ["connection_id", "kind", "match_phone"], unique=False)
        batch_op.create_index("ix_links_parent", ["parent_id"], unique=False)

    op.create_table(
        "rate_budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("upstream", sa.String(length=16), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=True),
        sa.Column("window_ms", sa.Integer(), nullable=True),
        sa.Column("reset_at", TIMESTAMP, nullable=True),
        sa.Column("daily_limit", sa.Integer(), nullable=True),
        sa.Column("daily_remaining", sa.Integer(), nullable=True),
        sa.Column("observed_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_rate_budgets_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_budgets")),
        sa.UniqueConstraint("connection_id", "upstream", name=op.f("uq_rate_budgets_connection_id_upstream")),
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("event_id", BIGID, nullable=True),
        sa.Column("link_id", BIGID, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rankr_id", sa.String(length=255), nullable=True),
        sa.Column("ghl_id", sa.String(length=255), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.Column("result", sa.String(length=8), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint("direction IN ('to_ghl', 'to_rankr')", name=op.f("ck_audit_entries_direction")),
        sa.CheckConstraint("result IN ('ok', 'error')", name=op.f("ck_audit_entries_result")),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_audit_entries_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_events.id"],
            name=op.f("fk_audit_entries_event_id_webhook_events"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["links.id"], name=op.f("fk_audit_entries_link_id_links"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entries_connection_at", ["connection_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_connection_at")

    op.drop_table("audit_entries")
    op.drop_table("rate_budgets")
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_index("ix_links_parent")
        batch_op.drop_index("ix_links_match_phone")
        batch_op.drop_index("ix_links_match_email")

    op.drop_table("links")
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_events_ordering")
        batch_op.drop_index("ix_webhook_events_due")

    op.drop_table("webhook_events")
    op.drop_table("connections")
