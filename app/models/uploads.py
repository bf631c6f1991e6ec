"""Uploaded files (photos of documents, PDFs, voice notes): who sent them, where they are,
what they are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.kinds import UploadPurpose, UploadStatus
from app.models.base import Base, BigId, UTCDateTime

UPLOAD_PURPOSES = (
    "material",
    "entrustment",
    "result",
    "receipt",
    "proof",
    "complaint",
    "staff_photo",
    "voice",
)


class Upload(Base):
    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'ready', 'rejected')", name="status"),
        Index("ix_uploads_owner_status", "owner_id", "status"),
        # The clean-up finds unattached uploads by age through this index.
        Index(
            "ix_uploads_unattached",
            "created_at",
            postgresql_where=text("order_id IS NULL"),
            sqlite_where=text("order_id IS NULL"),
        ),
        # The retention job finds an ended order's files by the order.
        Index("ix_uploads_order", "order_id"),
        # A POST to the local upload URL finds its upload by the key it was signed for.
        Index("ix_uploads_incoming_key", "incoming_key"),
        # Settled uploads whose raw key is still to be cleared, by when their form expires.
        Index(
            "ix_uploads_raw_to_clear",
            "upload_expires_at",
            postgresql_where=text("raw_cleared_at IS NULL AND status != 'pending'"),
            sqlite_where=text("raw_cleared_at IS NULL AND status != 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    purpose: Mapped[UploadPurpose] = mapped_column(String(20))
    status: Mapped[UploadStatus] = mapped_column(String(10), default="pending")
    declared_type: Mapped[str] = mapped_column(String(40))
    declared_size: Mapped[int] = mapped_column(BigInteger)
    incoming_key: Mapped[str] = mapped_column(String(200))
    upload_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key: Mapped[str | None] = mapped_column(String(200))
    thumbnail_key: Mapped[str | None] = mapped_column(String(200))
    content_type: Mapped[str | None] = mapped_column(String(40))
    size: Mapped[int | None] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    # A voice note's length, read from its frames when it completed (storage/audio.py), so
    # an order shows it without reading the file again; NULL for every other file.
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    rejected_code: Mapped[str | None] = mapped_column(String(40))
    # What the photo checks found when it completed (app/uploads/quality.py): a list of
    # {code, message}, empty when nothing was found or the file is not a photo; NULL before
    # completion, and for files completed before the checks existed. Warnings only: they
    # never refuse a file.
    warnings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Set when the file is attached to an order.
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    # Or kept as the evidence of a case without an order: "complaint:<id>" (a complaint's
    # photos, a letter), "appeal:<id>" (a rating appeal's evidence). The clean-up of
    # unattached uploads leaves such files alone; the retention job removes them once the
    # case has been over for DAIBAN_RETENTION_ORDER_FILES_DAYS.
    kept_for: Mapped[str | None] = mapped_column(String(40))
    # The wallet item (材料夹) this file is a copy of: the wallet's own copy (kept_for
    # "wallet:<id>"), or a copy made for an order from it (app/uploads/wallet.py).
    wallet_item_id: Mapped[int | None] = mapped_column(ForeignKey("wallet_items.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the raw file's key was cleared for good, after the form could no longer be used
    # (MinIO takes a second POST to a form that is still valid; app/uploads/service.py).
    raw_cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When its files were removed under the retention rules (key and thumbnail_key then
    # empty): the row stays, so the order still says which material was given.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
