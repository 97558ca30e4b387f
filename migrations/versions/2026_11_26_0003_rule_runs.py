"""rule runs: which automation rule acted on which contact

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 11:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rule_runs",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("contact_link_id", BIGID, nullable=False),
        sa.Column("event_id", BIGID, nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decision", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("state IN ('started', 'done')", name=op.f("ck_rule_runs_state")),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_rule_runs_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_link_id"],
            ["links.id"],
            name=op.f("fk_rule_runs_contact_link_id_links"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_events.id"],
            name=op.f("fk_rule_runs_event_id_webhook_events"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_runs")),
        sa.UniqueConstraint(
            "connection_id",
            "rule",
            "contact_link_id",
            name=op.f("uq_rule_runs_connection_id_rule_contact_link_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("rule_runs")
