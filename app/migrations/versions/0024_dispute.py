"""orders: disputes (提出异议) of a handed-back order: how many times it was disputed, and the
first round's due time, overdue mark and completion, kept when the first dispute reopens it

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 23:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dispute_rounds", sa.SmallInteger(), nullable=False, server_default="0")
        )
        for name in ("first_due_at", "first_overdue_at", "first_completed_at"):
            batch_op.add_column(
                sa.Column(name, app.models.base.UTCDateTime(timezone=True), nullable=True)
            )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("first_completed_at")
        batch_op.drop_column("first_overdue_at")
        batch_op.drop_column("first_due_at")
        batch_op.drop_column("dispute_rounds")
