"""Notifications (the outbox and inbox), subscription credits, scheduled reminders, job runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Base, BigId, UTCDateTime

# What became of a notification's WeChat copy (the inbox copy is always there):
# pending → sending → sent; or, without sending, no_template, no_openid, no_credit;
# unsubscribed (WeChat's 43101), failed (a final error or too many attempts), uncertain
# (the request went out but no answer came back: never sent again, so never twice), logged
# (dev mode writes it to the log).
WECHAT_STATES = (
    "pending",
    "sending",
    "sent",
    "no_template",
    "no_openid",
    "no_credit",
    "unsubscribed",
    "failed",
    "uncertain",
    "logged",
)


class Notification(Base):
    """One message to one person, written in the transaction of the change that causes it;
    `dedupe_key` makes a retried request or a re-run job write it once."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_inbox", "recipient_id", "id"),
        Index("ix_notifications_unread", "recipient_id", "read_at"),
        # Delivery claims pending rows that are due, and sending rows whose claim lapsed.
        Index("ix_notifications_delivery", "wechat_status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(30))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    title: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wechat_status: Mapped[str] = mapped_column(String(16))
    template_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Pending: when to try; sending: when the claim lapses.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(60))
    send_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))


class SubscriptionCredit(Base):
    """One-time subscriptions a person allowed for a template and we have not spent yet."""

    __tablename__ = "subscription_credits"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    credits: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reminder(Base):
    """A check due at a set time on one order (remind to take, 催办, 督办, supplement, visit).

    Written when the order enters the state the reminder watches; `basis` is that state's
    mark (e.g. when it was assigned), so a reminder whose order has moved on is dropped
    when it comes due. The job's cost follows the reminders due, not the orders stored."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("order_id", "kind", "basis"),
        Index("ix_reminders_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The order watched; none for a complaint about an agent (its basis names the complaint).
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    kind: Mapped[str] = mapped_column(String(24))
    basis: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending, done
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(20))


class JobRun(Base):
    """One run of a scheduled job in one worker: what it handled, or how it failed."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job", "job", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    worker: Mapped[str] = mapped_column(String(60))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    items: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
