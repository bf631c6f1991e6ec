"""The service catalogue: departments, items, their guide versions, where they are enabled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.kinds import ItemKind, ItemLevel, ItemMode
from app.models.base import Base, BigId, UTCDateTime


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(60))


class CatalogueItem(Base):
    """A matter (事项) with a stable code; its guide lives in versions, the newest is current.

    The searchable columns are copied from the current version so a search is one query.
    """

    __tablename__ = "catalogue_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("item_versions.id", use_alter=True), nullable=True
    )
    name: Mapped[str] = mapped_column(String(100), index=True)
    # "|养老保险|居民养老保险参保|": bars let a query match one whole alias exactly.
    aliases: Mapped[str] = mapped_column(Text, default="|")
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    kind: Mapped[ItemKind] = mapped_column(String(12))
    # Levels ("town,village") where a newly created item is switched on by default.
    default_enabled: Mapped[str] = mapped_column(String(20), default="")
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ItemVersion(Base):
    """One published guide (办事指南). Orders point at the version they were submitted under."""

    __tablename__ = "item_versions"
    __table_args__ = (
        UniqueConstraint("item_id", "version"),
        CheckConstraint("level IN ('village', 'town', 'district')", name="level"),
        CheckConstraint("kind IN ('immediate', 'promised', 'joint', 'escalated')", name="kind"),
        CheckConstraint("mode IN ('full', 'proxy', 'consult')", name="mode"),
        CheckConstraint("promised_days >= 0 AND legal_days >= promised_days", name="days"),
        CheckConstraint("fee_fen >= 0", name="fee"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalogue_items.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    aliases: Mapped[list[str]] = mapped_column(JSON)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))  # the lead (主办)
    # 联办件: the codes of the departments that handle it with the lead; [] for other kinds.
    co_departments: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    level: Mapped[ItemLevel] = mapped_column(String(10))
    kind: Mapped[ItemKind] = mapped_column(String(12))
    mode: Mapped[ItemMode] = mapped_column(String(10))
    conditions: Mapped[str] = mapped_column(Text)
    materials: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    steps: Mapped[list[str]] = mapped_column(JSON)
    promised_days: Mapped[int] = mapped_column(Integer)
    legal_days: Mapped[int] = mapped_column(Integer)
    fee_fen: Mapped[int] = mapped_column(Integer, default=0)
    fee_basis: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    in_person: Mapped[bool] = mapped_column(Boolean)
    phone: Mapped[str] = mapped_column(String(20))
    # 容缺受理: some required material may follow after acceptance. Derived from the
    # materials' own marks (each material dict's "may_follow"), which decide which.
    allow_accept_with_gaps: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


class ItemEnablement(Base):
    """An item handled by a town centre or a village station (a row means enabled)."""

    __tablename__ = "item_enablements"
    __table_args__ = (UniqueConstraint("region_id", "item_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("catalogue_items.id"), index=True)
