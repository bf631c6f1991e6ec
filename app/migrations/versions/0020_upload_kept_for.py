"""uploads: the files a complaint or a rating appeal keeps as evidence, safe from the
clean-up of unattached uploads

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 21:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kept_for", sa.String(length=40), nullable=True))
    # The files of complaints and appeals made before: kept from now on (those the clean-up
    # already removed are gone).
    bind = op.get_bind()
    uploads = sa.table("uploads", sa.column("id", sa.BigInteger), sa.column("kept_for", sa.String))
    for table, column, prefix in (
        ("complaints", "upload_ids", "complaint"),
        ("rating_appeals", "evidence_upload_ids", "appeal"),
    ):
        rows = bind.execute(
            sa.select(sa.column("id"), sa.column(column, sa.JSON)).select_from(sa.table(table))
        )
        for case_id, ids in rows:
            if ids:
                bind.execute(
                    uploads.update()
                    .where(uploads.c.id.in_(list(ids)))
                    .values(kept_for=f"{prefix}:{case_id}")
                )


def downgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_column("kept_for")
