"""The figures' indexes: a district's orders by status and by when they were received,
accepted and completed, and the timeline's events the figures count (progress, dispute)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 01:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRST_COMPLETED = sa.text("first_completed_at IS NOT NULL")
FIGURE_EVENTS = sa.text("action IN ('progress', 'dispute')")


def upgrade() -> None:
    op.create_index("ix_orders_district_status", "orders", ["district_id", "status"])
    op.create_index("ix_orders_district_submitted", "orders", ["district_id", "submitted_at"])
    op.create_index("ix_orders_district_accepted", "orders", ["district_id", "accepted_at"])
    op.create_index("ix_orders_district_completed", "orders", ["district_id", "completed_at"])
    op.create_index(
        "ix_orders_district_first_completed",
        "orders",
        ["district_id", "first_completed_at"],
        postgresql_where=FIRST_COMPLETED,
        sqlite_where=FIRST_COMPLETED,
    )
    op.create_index(
        "ix_order_events_figures",
        "order_events",
        ["action", "at"],
        postgresql_where=FIGURE_EVENTS,
        sqlite_where=FIGURE_EVENTS,
    )


def downgrade() -> None:
    op.drop_index("ix_order_events_figures", table_name="order_events")
    op.drop_index("ix_orders_district_first_completed", table_name="orders")
    op.drop_index("ix_orders_district_completed", table_name="orders")
    op.drop_index("ix_orders_district_accepted", table_name="orders")
    op.drop_index("ix_orders_district_submitted", table_name="orders")
    op.drop_index("ix_orders_district_status", table_name="orders")
