"""monthly ledgers provisional until their deadline, frozen as versions

A month's ledger is provisional (未定稿) until its deadline (a village's the 7th of the next
month, a town's the 10th), then frozen as version 1; a correction adds version 2, 3, … with
its reason. Ledgers built before this revision are old, so final: version 1, not
provisional, frozen when they were built.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("ledgers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("provisional", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("frozen_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("built_by", ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_ledgers_built_by_accounts"), "accounts", ["built_by"], ["id"]
        )
        batch_op.drop_constraint("uq_ledgers_region_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_ledgers_region_id"), ["region_id", "month", "version"]
        )
    op.execute("UPDATE ledgers SET frozen_at = built_at")


def downgrade() -> None:
    # Only the first version of each month can stay under the old rule of one a month.
    op.execute("DELETE FROM ledgers WHERE version > 1")
    with op.batch_alter_table("ledgers", schema=None) as batch_op:
        batch_op.drop_constraint("uq_ledgers_region_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_ledgers_region_id"), ["region_id", "month"]
        )
        batch_op.drop_constraint(batch_op.f("fk_ledgers_built_by_accounts"), type_="foreignkey")
        batch_op.drop_column("built_by")
        batch_op.drop_column("reason")
        batch_op.drop_column("frozen_at")
        batch_op.drop_column("provisional")
        batch_op.drop_column("version")
