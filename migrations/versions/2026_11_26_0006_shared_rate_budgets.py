"""shared rate budgets: the pacing schedule and today's count per connection and upstream

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TIMESTAMP = sa.DateTime(timezone=True)

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rate_budgets") as batch:
        batch.add_column(sa.Column("next_slot", sa.Float(), server_default="0", nullable=False))
        batch.add_column(sa.Column("day", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("day_count", sa.Integer(), server_default="0", nullable=False))
        batch.alter_column("observed_at", existing_type=TIMESTAMP, nullable=True)


def downgrade() -> None:
    # Rows made by a reservation before any answer was seen have no observation: they go.
    op.execute("DELETE FROM rate_budgets WHERE observed_at IS NULL")
    with op.batch_alter_table("rate_budgets") as batch:
        batch.alter_column("observed_at", existing_type=TIMESTAMP, nullable=False)
        batch.drop_column("day_count")
        batch.drop_column("day")
        batch.drop_column("next_slot")
