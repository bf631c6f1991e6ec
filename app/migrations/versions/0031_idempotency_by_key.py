"""orders: an index led by the Idempotency-Key, through which the submission finds an
earlier order by its key whatever the statistics say

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 04:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_idempotency", "orders", ["idempotency_key", "resident_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_idempotency", table_name="orders")
