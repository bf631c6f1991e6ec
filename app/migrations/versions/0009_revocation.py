"""revocation: why a login ended, and an index to find recent revocations

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_reason", sa.String(length=12), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_refresh_tokens_revoked_at"), ["revoked_at"], unique=False
        )
    # Logins ended before this revision: a reason a refresh can be told.
    op.execute(
        "UPDATE refresh_tokens SET revoked_reason = 'logout' "
        "WHERE revoked_at IS NOT NULL AND revoked_reason IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_revoked_at"))
        batch_op.drop_column("revoked_reason")
