"""backfill and reconciliation: sync_jobs (checkpoints, leases) and staged_contacts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 11:14:38.114471
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

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staged_contacts",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("wire", JSON, nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("match_email", sa.String(length=320), nullable=True),
        sa.Column("match_phone", sa.String(length=32), nullable=True),
        sa.Column("modified_at", TIMESTAMP, nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.String(length=600), nullable=True),
        sa.Column("event_ref", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_staged_contacts_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staged_contacts")),
        sa.UniqueConstraint(
            "connection_id",
            "job",
            "side",
            "record_id",
            name=op.f("uq_staged_contacts_connection_id_job_side_record_id"),
        ),
    )
    with op.batch_alter_table("staged_contacts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_staged_contacts_email", ["connection_id", "job", "match_email"], unique=False
        )
        batch_op.create_index(
            "ix_staged_contacts_outcome", ["connection_id", "job", "outcome", "id"], unique=False
        )
        batch_op.create_index(
            "ix_staged_contacts_phone", ["connection_id", "job", "match_phone"], unique=False
        )

    op.create_table(
        "sync_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("cursor", JSON, nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=96), nullable=True),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_sync_jobs_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_jobs")),
        sa.UniqueConstraint("connection_id", "job", name=op.f("uq_sync_jobs_connection_id_job")),
    )


def downgrade() -> None:
    op.drop_table("sync_jobs")
    with op.batch_alter_table("staged_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_staged_contacts_phone")
        batch_op.drop_index("ix_staged_contacts_outcome")
        batch_op.drop_index("ix_staged_contacts_email")
    op.drop_table("staged_contacts")
