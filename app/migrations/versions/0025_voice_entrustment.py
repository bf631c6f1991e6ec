"""voice notes and the entrustment signed on the phone: an upload's duration (a voice
note's, read from its frames), an order's voice notes, and the entrustment its resident
signed in the mini-program (the text as signed, its hash, the PDF and the signature)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 23:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duration_ms", sa.Integer(), nullable=True))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entrustment_signature", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("voice_note_upload_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("voice_note_upload_ids")
        batch_op.drop_column("entrustment_signature")
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_column("duration_ms")
