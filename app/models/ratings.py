"""Ratings (好差评), rectification of bad ratings (整改), appeals (申诉复核), complaints (投诉)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.kinds import AnswerKind, AppealReason, AppealStatus, CaseStatus, ComplaintStatus
from app.models.base import Base, BigId, UTCDateTime

# 投诉可采用口头、电话或书面形式 (seed 002): in the mini-program, or recorded by staff for a
# call, a visit or a letter. The Literals live here, beside the CHECK constraints that say
# the same (app/migrations/versions/0016_complaint_channels.py).
ComplaintChannel = Literal["mini_program", "phone", "in_person", "letter"]
StaffChannel = Literal["phone", "in_person", "letter"]  # 电话, 来访, 信件
# How an answer reached a complainant without the mini-program: 电话回复, 当面答复, 书面答复,
# 公示答复 (posted at the centre: an anonymous letter has no one to write back to).
AnsweredVia = Literal["phone", "in_person", "letter", "notice"]


class Rating(Base):
    """One rating per finished order, by its resident or, after the window, the default."""

    __tablename__ = "ratings"
    __table_args__ = (
        Index("ix_ratings_town", "town_id", "rated_at"),
        Index("ix_ratings_agent", "agent_id", "rated_at"),
        Index("ix_ratings_district", "district_id", "rated_at"),
        CheckConstraint("order_outcome IN ('done', 'refused', 'terminated')", name="order_outcome"),
        CheckConstraint("channel IN ('app', 'web', 'paper', 'default')", name="channel"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    village_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    district_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("catalogue_items.id"))
    grade: Mapped[int] = mapped_column(SmallInteger)  # 5 非常满意 … 1 非常不满意
    tags: Mapped[list[str]] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text)
    # none, pending (not yet checked), passed, blocked: staff see a comment only once passed.
    comment_status: Mapped[str] = mapped_column(String(10))
    is_default: Mapped[bool] = mapped_column(Boolean)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # An upheld appeal leaves the rating out of the figures; the rating itself stays.
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    # How the order ended: done (办结 and handed back), refused (不予受理, 退办) or terminated
    # (终止办理). A refusal is service too (好差评全覆盖); the figures keep them apart.
    order_outcome: Mapped[str] = mapped_column(String(10), default="done", server_default="done")
    # Where the rating came from: app (the resident in the mini-program), web (the public
    # progress page, after the ID or phone digits), paper (a rating card the agent recorded
    # with a photo of it, in card_upload_ids) or default (the window passed). recorded_by is
    # the staff member who typed a paper card in; the figures show those apart.
    channel: Mapped[str] = mapped_column(String(10), default="app", server_default="app")
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    card_upload_ids: Mapped[list[int] | None] = mapped_column(JSON(none_as_null=True))


class Rectification(Base):
    """整改: a bad rating's case for the town: verify, fix or explain, answer, follow-up."""

    __tablename__ = "rectifications"
    __table_args__ = (
        Index("ix_rectifications_town", "town_id", "status", "id"),
        Index("ix_rectifications_order", "order_id", "status"),  # retention: a case open?
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    district_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    status: Mapped[CaseStatus] = mapped_column(String(12))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    verify_note: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    answer_kind: Mapped[AnswerKind | None] = mapped_column(String(10))
    answer: Mapped[str | None] = mapped_column(Text)
    follow_up: Mapped[str | None] = mapped_column(String(12))  # satisfied, basic, unsatisfied
    follow_up_comment: Mapped[str | None] = mapped_column(Text)
    followed_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RatingAppeal(Base):
    """申诉复核: a dispatcher says a rating is mistaken or malicious; an admin decides."""

    __tablename__ = "rating_appeals"
    __table_args__ = (Index("ix_rating_appeals_status", "district_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"), index=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    appealed_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    appealed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[AppealReason] = mapped_column(String(10))
    evidence: Mapped[str] = mapped_column(Text)
    evidence_upload_ids: Mapped[list[int]] = mapped_column(JSON)
    status: Mapped[AppealStatus] = mapped_column(String(10))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)


class Complaint(Base):
    """投诉 about an order or an agent; the town answers by the end of the next day (natural
    or working: DAIBAN_RATINGS_COMPLAINT_NEXT_DAY). Made by a resident in the mini-program,
    or recorded by staff for one who phoned, came in or wrote (`channel`, `received_by`).

    `resident_id` is the complainant's own account, when they have one the answer can reach;
    else it is null, and what they gave to be reached is kept here as on an account: phone
    and ID number only encrypted, with keyed hashes (`contact_*`); none when anonymous."""

    __tablename__ = "complaints"
    __table_args__ = (
        Index("ix_complaints_town", "town_id", "status", "id"),
        Index("ix_complaints_resident", "resident_id", "id"),
        Index("ix_complaints_order", "order_id", "status"),  # retention: a complaint open?
        CheckConstraint(
            "channel IN ('mini_program', 'phone', 'in_person', 'letter')", name="channel"
        ),
        CheckConstraint(
            "answered_via IS NULL OR answered_via IN ('phone', 'in_person', 'letter', 'notice')",
            name="answered_via",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    district_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    text: Mapped[str] = mapped_column(Text)
    upload_ids: Mapped[list[int]] = mapped_column(JSON)
    status: Mapped[ComplaintStatus] = mapped_column(String(10))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    resolved: Mapped[bool | None] = mapped_column(Boolean)  # the resident's word on it
    feedback: Mapped[str | None] = mapped_column(Text)
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    channel: Mapped[ComplaintChannel] = mapped_column(
        String(12), default="mini_program", server_default="mini_program"
    )
    received_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))  # staff
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    contact_name: Mapped[str | None] = mapped_column(String(40))
    contact_phone_enc: Mapped[str | None] = mapped_column(Text)
    contact_phone_hash: Mapped[str | None] = mapped_column(String(64))
    contact_id_number_enc: Mapped[str | None] = mapped_column(Text)
    contact_id_number_hash: Mapped[str | None] = mapped_column(String(64))
    answered_via: Mapped[AnsweredVia | None] = mapped_column(String(10))
    answered_note: Mapped[str | None] = mapped_column(Text)
