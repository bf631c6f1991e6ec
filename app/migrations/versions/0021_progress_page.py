"""orders: the public progress page behind the acceptance slip's QR code (its token's seed
and hash, views, wrong digits and the lock-out)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress_page_seed", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("progress_page_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("progress_page_views", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "progress_page_failures", sa.SmallInteger(), nullable=False, server_default="0"
            )
        )
        batch_op.add_column(
            sa.Column(
                "progress_page_failed_at", app.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "progress_page_locked_until",
                app.models.base.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.create_index("ix_orders_progress_page_hash", ["progress_page_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_progress_page_hash")
        batch_op.drop_column("progress_page_locked_until")
        batch_op.drop_column("progress_page_failed_at")
        batch_op.drop_column("progress_page_failures")
        batch_op.drop_column("progress_page_views")
        batch_op.drop_column("progress_page_hash")
        batch_op.drop_column("progress_page_seed")
