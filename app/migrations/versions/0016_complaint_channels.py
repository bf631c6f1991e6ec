"""complaints received by phone, in person or by letter

Staff record a complaint for a resident who phoned, came in or wrote (seed 002: 投诉可采用
口头、电话或书面形式): its channel and who received it; the complainant may have no account
(the contact they gave is kept encrypted, as on an account) or be anonymous, so
`resident_id` becomes nullable; an answer given outside the mini-program says how.
Existing complaints were all made in the mini-program.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.alter_column("resident_id", existing_type=BigId, nullable=True)
        batch_op.add_column(
            sa.Column(
                "channel", sa.String(length=12), server_default="mini_program", nullable=False
            )
        )
        batch_op.add_column(sa.Column("received_by", BigId, nullable=True))
        batch_op.add_column(
            sa.Column("anonymous", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("contact_name", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("contact_phone_enc", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("contact_phone_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("contact_id_number_enc", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("contact_id_number_hash", sa.String(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("answered_via", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("answered_note", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_complaints_received_by_accounts"), "accounts", ["received_by"], ["id"]
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_complaints_channel"),
            "channel IN ('mini_program', 'phone', 'in_person', 'letter')",
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_complaints_answered_via"),
            "answered_via IS NULL OR answered_via IN ('phone', 'in_person', 'letter', 'notice')",
        )


def downgrade() -> None:
    # Complaints without an account cannot go back to a table that requires one.
    op.execute("DELETE FROM complaints WHERE resident_id IS NULL")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_complaints_answered_via"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_complaints_channel"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_complaints_received_by_accounts"), type_="foreignkey"
        )
        batch_op.drop_column("answered_note")
        batch_op.drop_column("answered_via")
        batch_op.drop_column("contact_id_number_hash")
        batch_op.drop_column("contact_id_number_enc")
        batch_op.drop_column("contact_phone_hash")
        batch_op.drop_column("contact_phone_enc")
        batch_op.drop_column("contact_name")
        batch_op.drop_column("anonymous")
        batch_op.drop_column("received_by")
        batch_op.drop_column("channel")
        batch_op.alter_column("resident_id", existing_type=BigId, nullable=False)
