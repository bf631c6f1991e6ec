"""district setup: regions.retired_at, for regions merged away or no longer in the
division-code file; accounts.staff_number, by which a staff import finds a person again

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("regions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("retired_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("staff_number", sa.String(length=20), nullable=True))
        batch_op.create_unique_constraint("uq_accounts_staff_number", ["staff_number"])


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint("uq_accounts_staff_number", type_="unique")
        batch_op.drop_column("staff_number")
    with op.batch_alter_table("regions", schema=None) as batch_op:
        batch_op.drop_column("retired_at")
