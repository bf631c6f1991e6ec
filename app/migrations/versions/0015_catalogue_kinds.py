"""catalogue: each material may say whether it may follow (容缺), joint items name their co-departments

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The materials that never follow (app/catalogue/document.py ESSENTIAL_MATERIALS, as of now).
ESSENTIAL_MATERIALS = frozenset({"id_card", "application_form", "entrustment"})

versions = sa.table(
    "item_versions",
    sa.column("id", sa.Integer()),
    sa.column("materials", sa.JSON()),
    sa.column("allow_accept_with_gaps", sa.Boolean()),
)


def upgrade() -> None:
    with op.batch_alter_table("item_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("co_departments", sa.JSON(), server_default="[]", nullable=False)
        )
    # 容缺受理 was one switch per item: on an item that had it, every required material but
    # the essential ones could follow. Each such material now says so itself, so the guides
    # (and the orders submitted under them) keep what they allowed.
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(versions.c.id, versions.c.materials).where(versions.c.allow_accept_with_gaps)
    ).all()
    for id_, materials in rows:
        marked = [
            {
                **m,
                "may_follow": bool(m.get("required", True))
                and m.get("code") not in ESSENTIAL_MATERIALS,
            }
            for m in materials
        ]
        connection.execute(sa.update(versions).where(versions.c.id == id_).values(materials=marked))


def downgrade() -> None:
    # The item-level switch (kept, derived from the marks) decides again; the marks go, as
    # the older guides' materials know no such field.
    connection = op.get_bind()
    rows = connection.execute(sa.select(versions.c.id, versions.c.materials)).all()
    for id_, materials in rows:
        if any("may_follow" in m for m in materials):
            unmarked = [{k: v for k, v in m.items() if k != "may_follow"} for m in materials]
            connection.execute(
                sa.update(versions).where(versions.c.id == id_).values(materials=unmarked)
            )
    with op.batch_alter_table("item_versions", schema=None) as batch_op:
        batch_op.drop_column("co_departments")
