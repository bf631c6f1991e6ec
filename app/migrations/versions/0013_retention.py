"""retention: when an order ended and its files were removed, when an account was last seen
or closed, and an audit log whose rows older than a year may be removed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ended_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("files_removed_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_orders_files_due",
            ["ended_at"],
            unique=False,
            postgresql_where=sa.text("files_removed_at IS NULL AND ended_at IS NOT NULL"),
            sqlite_where=sa.text("files_removed_at IS NULL AND ended_at IS NOT NULL"),
        )
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("removed_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_uploads_order", ["order_id"], unique=False)
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_seen_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("closed_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_accounts_idle",
            ["last_seen_at"],
            unique=False,
            postgresql_where=sa.text("role = 'resident' AND closed_at IS NULL"),
            sqlite_where=sa.text("role = 'resident' AND closed_at IS NULL"),
        )
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index("ix_complaints_order", ["order_id", "status"], unique=False)
    with op.batch_alter_table("rectifications", schema=None) as batch_op:
        batch_op.create_index("ix_rectifications_order", ["order_id", "status"], unique=False)
    # Orders that ended before this version: from their archiving, else their last change.
    op.execute(
        "UPDATE orders SET ended_at = COALESCE(closed_at, updated_at) "
        "WHERE status IN ('closed', 'rejected', 'cancelled')"
    )
    op.execute("UPDATE accounts SET last_seen_at = updated_at WHERE role = 'resident'")

    # The audit log stays append-only, except that a row more than a year old may be removed
    # (the retention job, DAIBAN_RETENTION_AUDIT_YEARS >= 1): the database itself still
    # refuses any change and the removal of a younger row.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_log_no_delete")
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "WHEN OLD.at >= strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 year') "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )
    else:
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'DELETE' AND OLD.at < now() - interval '1 year' THEN RETURN OLD; END IF; "
            "RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_log_no_delete")
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )
    else:
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
    with op.batch_alter_table("rectifications", schema=None) as batch_op:
        batch_op.drop_index("ix_rectifications_order")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index("ix_complaints_order")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_idle")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("last_seen_at")
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_index("ix_uploads_order")
        batch_op.drop_column("removed_at")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_files_due")
        batch_op.drop_column("files_removed_at")
        batch_op.drop_column("ended_at")
