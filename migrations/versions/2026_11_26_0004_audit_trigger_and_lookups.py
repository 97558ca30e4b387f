"""audit entries: the triggering event's type and id, and indexes for history and pruning

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 11:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_type", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("event_ref", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_audit_entries_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_entries_rankr_id", ["rankr_id"], unique=False)
        batch_op.create_index("ix_audit_entries_ghl_id", ["ghl_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_ghl_id")
        batch_op.drop_index("ix_audit_entries_rankr_id")
        batch_op.drop_index("ix_audit_entries_at")
        batch_op.drop_column("event_ref")
        batch_op.drop_column("event_type")
