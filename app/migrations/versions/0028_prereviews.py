"""智能预审: prereviews, what the service read on a photographed identity document

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05 04:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = app.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "prereviews",
        sa.Column("upload_id", ID, nullable=False),
        sa.Column("expected", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=60), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("fields_enc", sa.Text(), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=True),
        sa.Column("engine", sa.String(length=40), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("queued_at", WHEN, nullable=False),
        sa.Column("claimed_at", WHEN, nullable=True),
        sa.Column("read_at", WHEN, nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=True),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("decided_by", ID, nullable=True),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["uploads.id"],
            name=op.f("fk_prereviews_upload_id_uploads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["accounts.id"], name=op.f("fk_prereviews_decided_by_accounts")
        ),
        sa.PrimaryKeyConstraint("upload_id", name=op.f("pk_prereviews")),
    )
    op.create_index(
        "ix_prereviews_queue",
        "prereviews",
        ["queued_at"],
        postgresql_where=sa.text("status IN ('queued', 'reading')"),
        sqlite_where=sa.text("status IN ('queued', 'reading')"),
    )


def downgrade() -> None:
    op.drop_index("ix_prereviews_queue", table_name="prereviews")
    op.drop_table("prereviews")
