"""The monthly ledger files (台账) and the append-only audit log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Base, BigId, UTCDateTime


class Ledger(Base):
    """One version of one region's record of one month: a village's, or its town's
    compilation (app/ledger/files.py). Version 1 is provisional (未定稿, rebuilt nightly)
    until the month's deadline, then frozen; each correction after that adds a version with
    its reason. A frozen version's row and file never change."""

    __tablename__ = "ledgers"
    __table_args__ = (
        UniqueConstraint("region_id", "month", "version"),
        Index("ix_ledgers_month", "month", "level"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    level: Mapped[str] = mapped_column(String(10))  # village, town
    month: Mapped[date] = mapped_column(Date)  # its first day
    object_key: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    orders: Mapped[int] = mapped_column(Integer)  # rows of the order register
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    provisional: Mapped[bool] = mapped_column(Boolean, server_default=false())
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None while provisional
    reason: Mapped[str | None] = mapped_column(Text)  # a correction's (version 2 and later)
    built_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))  # None: the job


class AuditEntry(Base):
    """Who read or exported personal data, and who changed the catalogue, staff, the
    calendar or dispatch settings. Rows are only ever added (triggers refuse the rest)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_actor", "actor_id", "id"),
        Index("ix_audit_log_action", "action", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor_role: Mapped[str] = mapped_column(String(12))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))  # the actor's
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(120))
    purpose: Mapped[str | None] = mapped_column(Text)  # required for unmasked exports
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
