"""ratings: the channel each rating came through (the mini-program, the public progress
page, a paper rating card recorded by the agent with its photo, or the default after the
window) and who recorded it, so that staff-recorded ratings are shown apart in the figures

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 23:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=10), nullable=False, server_default="app")
        )
        batch_op.add_column(
            sa.Column(
                "recorded_by",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("card_upload_ids", sa.JSON(), nullable=True))
        batch_op.create_foreign_key(
            "fk_ratings_recorded_by_accounts", "accounts", ["recorded_by"], ["id"]
        )
        batch_op.create_check_constraint("channel", "channel IN ('app', 'web', 'paper', 'default')")
    op.execute("UPDATE ratings SET channel = 'default' WHERE is_default")


def downgrade() -> None:
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_constraint("channel", type_="check")
        batch_op.drop_constraint("fk_ratings_recorded_by_accounts", type_="foreignkey")
        batch_op.drop_column("card_upload_ids")
        batch_op.drop_column("recorded_by")
        batch_op.drop_column("channel")
