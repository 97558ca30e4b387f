"""install states: single-use secrets of the GHL install flow (one-time links and OAuth states)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TIMESTAMP = sa.DateTime(timezone=True)

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "install_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("rankr_account_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("used_at", TIMESTAMP, nullable=True),
        sa.Column("refusals", sa.Integer(), nullable=False),
        sa.Column("refused_at", TIMESTAMP, nullable=True),
        sa.Column("refusal", sa.String(length=200), nullable=True),
        sa.CheckConstraint("kind IN ('link', 'state')", name=op.f("ck_install_states_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_install_states")),
        sa.UniqueConstraint("digest", name=op.f("uq_install_states_digest")),
    )


def downgrade() -> None:
    op.drop_table("install_states")
