"""order numbers on PostgreSQL from a sequence: order_number_seq, and order_number_days, where
each day's numbers start in it

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_number_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("base", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_order_number_days")),
    )
    if op.get_bind().dialect.name != "sqlite":
        # One value a call, none cached by a session: values come in the order they are taken.
        op.execute("CREATE SEQUENCE order_number_seq AS bigint NO CYCLE")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP SEQUENCE order_number_seq")
    op.drop_table("order_number_days")
