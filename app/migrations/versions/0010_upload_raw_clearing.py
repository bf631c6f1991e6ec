"""uploads: find a form's upload by its key; clear raw keys once their forms expire

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TO_CLEAR = "raw_cleared_at IS NULL AND status != 'pending'"


def upgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("raw_cleared_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_uploads_incoming_key", ["incoming_key"], unique=False)
        batch_op.create_index(
            "ix_uploads_raw_to_clear",
            ["upload_expires_at"],
            unique=False,
            postgresql_where=sa.text(TO_CLEAR),
            sqlite_where=sa.text(TO_CLEAR),
        )
    # Uploads settled before this revision count as cleared: their raw files went at
    # verification. (A second POST to a form still valid at the upgrade is the one case left;
    # MinIO's lifecycle rule on incoming/ removes it within a day.)
    op.execute(
        "UPDATE uploads SET raw_cleared_at = completed_at "
        "WHERE status != 'pending' AND completed_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_index("ix_uploads_raw_to_clear")
        batch_op.drop_index("ix_uploads_incoming_key")
        batch_op.drop_column("raw_cleared_at")
