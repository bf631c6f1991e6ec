"""智能预审: what the service read on a photographed document (app/uploads/prereviews.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Base, BigId, UTCDateTime


class Prereview(Base):
    """One upload's pre-review: queued when a photo declared as an identity document
    completes, read by the job, shown beside the photo. No text of the card in the clear:
    the fields read are sealed with the personal-data keys."""

    __tablename__ = "prereviews"
    __table_args__ = (
        # The job takes the oldest waiting photos (and those a stopped worker left half-read).
        Index(
            "ix_prereviews_queue",
            "queued_at",
            postgresql_where=text("status IN ('queued', 'reading')"),
            sqlite_where=text("status IN ('queued', 'reading')"),
        ),
    )

    upload_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    # What the photo is meant to show: id_card_front, id_card_back, hukou_page,
    # disability_card, bank_card (app/prereview/checks.py's ExpectedKind).
    expected: Mapped[str] = mapped_column(String(20))
    # awaiting (its file not yet complete), queued, reading (a worker has it), read,
    # skipped (the queue was full, or the file was removed), engine_missing (no recogniser
    # where the job ran, or pre-review turned off), failed (read too often without end).
    status: Mapped[str] = mapped_column(String(16), default="queued")
    note: Mapped[str | None] = mapped_column(String(60))  # why skipped or not read
    kind: Mapped[str | None] = mapped_column(String(20))  # what it looked like
    confidence: Mapped[float | None] = mapped_column(Float)
    # The fields read (name, number, dates …) as sealed JSON (context "prereview"):
    # personal data, never in the clear.
    fields_enc: Mapped[str | None] = mapped_column(Text)
    # The findings for the uploader when read ([{code, message, severity}]): no personal data.
    findings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    engine: Mapped[str | None] = mapped_column(String(40))
    seconds: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The agent's decision in review, beside the machine's: accepted, rejected or
    # material_rejected (补正: app/uploads/prereviews.py), and whether the machine had
    # warned of this photo for that order (flagged).
    flagged: Mapped[bool | None] = mapped_column(Boolean)
    decision: Mapped[str | None] = mapped_column(String(20))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
