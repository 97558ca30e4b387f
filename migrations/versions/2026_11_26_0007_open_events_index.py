"""open events index: the ids of pending, processing and retrying events (the claim's walk)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 18:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy, not an import of app.inbox.models.IS_OPEN: a migration keeps the schema of its own day.
IS_OPEN = sa.text("status IN ('pending', 'processing', 'retrying')")


def upgrade() -> None:
    # Built without blocking the intake's inserts on Postgres (CONCURRENTLY, outside a transaction):
    # the table holds every event of the last EVENT_RETENTION_DAYS.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_webhook_events_open", "webhook_events", ["id"], unique=False,
            postgresql_where=IS_OPEN, sqlite_where=IS_OPEN, postgresql_concurrently=True,
        )  # fmt: skip


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_webhook_events_open", table_name="webhook_events", postgresql_concurrently=True)
