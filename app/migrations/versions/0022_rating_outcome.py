"""ratings: how the rated order ended (done, refused, terminated), so that every ended order
can be rated and the figures keep them apart

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 21:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("order_outcome", sa.String(length=10), nullable=False, server_default="done")
        )
        batch_op.create_check_constraint(
            "order_outcome", "order_outcome IN ('done', 'refused', 'terminated')"
        )


def downgrade() -> None:
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_constraint("order_outcome", type_="check")
        batch_op.drop_column("order_outcome")
