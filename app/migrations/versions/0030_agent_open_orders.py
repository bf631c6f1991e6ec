"""An agent's open orders: a partial index for the board's workload column

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 01:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# app/models/orders.py: OPEN_PREDICATE, as it was when this migration was written
OPEN = sa.text(
    "status IN ('accepted', 'assigned', 'on_hold', 'reviewing', 'submitted', 'supplement_required')"
)


def upgrade() -> None:
    op.create_index(
        "ix_orders_agent_open",
        "orders",
        ["agent_id"],
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_orders_agent_open", table_name="orders")
