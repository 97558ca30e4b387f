"""staged counterpart: a backfill pair's other record, so pairs are queued after every decision

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staged_contacts") as batch:
        batch.add_column(sa.Column("counterpart_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staged_contacts") as batch:
        batch.drop_column("counterpart_id")
