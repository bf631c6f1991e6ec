"""the material wallet (材料夹): wallet_items, and uploads.wallet_item_id for the wallet's own
copies of a document and the copies made from them for later orders

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 23:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = app.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "wallet_items",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("material_code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source_order_id", ID, nullable=False),
        sa.Column("verified_by", ID, nullable=True),
        sa.Column("verified_at", WHEN, nullable=False),
        sa.Column("consent_at", WHEN, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("removed_at", WHEN, nullable=True),
        sa.Column("removed_reason", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.id"], name=op.f("fk_wallet_items_owner_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["source_order_id"],
            ["orders.id"],
            name=op.f("fk_wallet_items_source_order_id_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["verified_by"], ["accounts.id"], name=op.f("fk_wallet_items_verified_by_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_items")),
    )
    op.create_index("ix_wallet_items_owner", "wallet_items", ["owner_id", "id"])
    op.create_index(
        "ix_wallet_items_expiry",
        "wallet_items",
        ["expires_at"],
        postgresql_where=sa.text("removed_at IS NULL"),
        sqlite_where=sa.text("removed_at IS NULL"),
    )
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wallet_item_id", ID, nullable=True))
        batch_op.create_foreign_key(
            "fk_uploads_wallet_item_id_wallet_items", "wallet_items", ["wallet_item_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_constraint("fk_uploads_wallet_item_id_wallet_items", type_="foreignkey")
        batch_op.drop_column("wallet_item_id")
    op.drop_index("ix_wallet_items_expiry", table_name="wallet_items")
    op.drop_index("ix_wallet_items_owner", table_name="wallet_items")
    op.drop_table("wallet_items")
