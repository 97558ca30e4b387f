"""ghl credentials: per-connection GHL tokens (encrypted), refresh lease, re-auth state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 11:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TIMESTAMP = sa.DateTime(timezone=True)

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ghl_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("company_id", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("lease_holder", sa.String(length=96), nullable=True),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("refreshed_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "kind IN ('private', 'oauth', 'agency_location', 'agency')", name=op.f("ck_ghl_credentials_kind")
        ),
        sa.CheckConstraint("state IN ('ok', 'needs_reauth')", name=op.f("ck_ghl_credentials_state")),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_ghl_credentials_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ghl_credentials")),
        sa.UniqueConstraint("connection_id", name=op.f("uq_ghl_credentials_connection_id")),
    )
    with op.batch_alter_table("ghl_credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ghl_credentials_company_id"), ["company_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ghl_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ghl_credentials_company_id"))
    op.drop_table("ghl_credentials")
