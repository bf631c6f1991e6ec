"""Regions: the district → town → village tree with 12-digit statistical codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, true
from sqlalchemy.orm import Mapped, mapped_column

from app.kinds import RegionLevel
from app.models.base import Base, BigId, UTCDateTime

REGION_LEVELS = ("district", "town", "village")


class Region(Base):
    __tablename__ = "regions"
    __table_args__ = (
        CheckConstraint("level IN ('district', 'town', 'village')", name="level"),
        CheckConstraint("length(code) = 12", name="code_length"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    level: Mapped[RegionLevel] = mapped_column(String(10))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    # Denormalised ancestors, so a scope filter is one equality, not a tree walk.
    district_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    town_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    # Towns: new orders go to the village's A or B agent by themselves, or all to the
    # dispatchers' pool (人工派单). Villages and districts ignore it.
    auto_dispatch: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Retired (撤并): no longer offered to residents, staff or new orders; its orders, staff
    # and records stay. A division-code file that lists it again brings it back.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
