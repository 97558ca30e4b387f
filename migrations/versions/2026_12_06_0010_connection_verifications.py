"""connection verifications: the latest check of each connection against the real APIs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TIMESTAMP = sa.DateTime(timezone=True)

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connection_verifications",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("checked_at", TIMESTAMP, nullable=False),
        sa.Column("problem_code", sa.String(length=64), nullable=True),
        sa.Column("problem_reason", sa.Text(), nullable=True),
        sa.Column("problem_fix", sa.Text(), nullable=True),
        sa.Column("location_name", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_connection_verifications_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_connection_verifications")),
    )


def downgrade() -> None:
    op.drop_table("connection_verifications")
