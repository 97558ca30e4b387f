"""settings versions (the sync configuration kept in the database, one row per save) and reveals
(each time the console showed an audit entry's unmasked values)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settings_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settings_versions")),
    )
    op.create_table(
        "reveals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("revealed_by", sa.String(length=200), nullable=False),
        sa.Column("audit_entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("contact_id", sa.String(length=255), nullable=True),
        sa.Column("fields", sa.String(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reveals")),
    )


def downgrade() -> None:
    op.drop_table("reveals")
    op.drop_table("settings_versions")
