"""orders: an escalated or joint matter's progress, supplement rounds, the green channel's source

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("green_channel_source", sa.String(length=10), nullable=True))
        batch_op.add_column(
            sa.Column("supplement_rounds", sa.SmallInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("progress", sa.JSON(), nullable=True))
    # The rounds of orders already noticed: one per supplement notice in their timeline.
    op.execute(
        "UPDATE orders SET supplement_rounds = (SELECT count(*) FROM order_events e "
        "WHERE e.order_id = orders.id AND e.action = 'request_supplement')"
    )
    op.execute("UPDATE orders SET green_channel_source = 'declared' WHERE green_channel")
    # Escalated and joint orders carry their progress from submission (the board finds them
    # by it, through the index below).
    op.execute(
        "UPDATE orders SET progress = '{\"parts\": []}' WHERE item_version_id IN "
        "(SELECT id FROM item_versions WHERE kind IN ('escalated', 'joint'))"
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_town_progress",
            ["town_id", "status", "due_at"],
            unique=False,
            postgresql_where=sa.text("progress IS NOT NULL"),
            sqlite_where=sa.text("progress IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_town_progress")
        batch_op.drop_column("progress")
        batch_op.drop_column("supplement_rounds")
        batch_op.drop_column("green_channel_source")
