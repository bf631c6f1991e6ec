"""Orders (办件): one proxy request through 委托 → 受理 → 承办 → 回交, and its timeline."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Base, BigId, UTCDateTime

# The open statuses (app/orders/states.py: OPEN, checked equal by the tests), as SQL.
OPEN_PREDICATE = (
    "status IN ('accepted', 'assigned', 'on_hold', 'reviewing', 'submitted', 'supplement_required')"
)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("resident_id", "idempotency_key"),
        # The submission finds an earlier order by its Idempotency-Key through this index
        # (app/orders/submission.py), with the resident beside the key so that the order's
        # id comes from the index alone. The constraint's own index shares its first column
        # with ix_orders_resident, which PostgreSQL chose whenever its statistics expected
        # the resident to have few orders, and then read every order of theirs for the key.
        Index("ix_orders_idempotency", "idempotency_key", "resident_id"),
        # Every list is newest first with a keyset on id: each filter has an index ending in
        # id, so a page is one range scan whatever the table's size.
        # Staff lists put flagged orders (green channel, visits) first: those indexes carry
        # priority before id, so "priority DESC, id DESC" is one backward range scan.
        Index("ix_orders_resident", "resident_id", "id"),
        Index("ix_orders_agent", "agent_id", "priority", "id"),
        Index("ix_orders_agent_status", "agent_id", "status", "priority", "id"),
        Index("ix_orders_town", "town_id", "priority", "id"),
        Index("ix_orders_town_status", "town_id", "status", "priority", "id"),
        Index("ix_orders_town_due", "town_id", "status", "due_at"),
        Index("ix_orders_village", "village_id", "priority", "id"),
        Index("ix_orders_village_status", "village_id", "status", "priority", "id"),
        Index("ix_orders_due", "status", "due_at"),
        # The district's figures (app/ledger/figures.py) by what happened in the period:
        # received, accepted, completed (a disputed order's first completion), and those
        # in progress now. Without them a district's figures read every order of the
        # database; a town's read its own orders through the ix_orders_town indexes.
        Index("ix_orders_district_status", "district_id", "status"),
        Index("ix_orders_district_submitted", "district_id", "submitted_at"),
        Index("ix_orders_district_accepted", "district_id", "accepted_at"),
        Index("ix_orders_district_completed", "district_id", "completed_at"),
        Index(
            "ix_orders_district_first_completed",
            "district_id",
            "first_completed_at",
            postgresql_where=text("first_completed_at IS NOT NULL"),
            sqlite_where=text("first_completed_at IS NOT NULL"),
        ),
        # An agent's open orders (the board's workload column): the statuses of OPEN
        # (app/orders/states.py: OPEN_ORDER, which the statements carry inline, as SQLite
        # uses a partial index only for a term that matches its predicate). A few in a
        # hundred of all orders are open; ix_orders_agent_status reads every order of the
        # agent to find them (PostgreSQL filters a list of statuses, not probes it).
        Index(
            "ix_orders_agent_open",
            "agent_id",
            postgresql_where=text(OPEN_PREDICATE),
            sqlite_where=text(OPEN_PREDICATE),
        ),
        # The village's recent requests by item (本村常办), answered from the index alone.
        Index("ix_orders_village_recent", "village_id", "submitted_at", "item_id"),
        # The retention job finds ended orders whose files are due by when they ended.
        Index(
            "ix_orders_files_due",
            "ended_at",
            postgresql_where=text("files_removed_at IS NULL AND ended_at IS NOT NULL"),
            sqlite_where=text("files_removed_at IS NULL AND ended_at IS NOT NULL"),
        ),
        # The board's 上报件 and 联办件 under way: only their orders carry `progress`.
        Index(
            "ix_orders_town_progress",
            "town_id",
            "status",
            "due_at",
            postgresql_where=text("progress IS NOT NULL"),
            sqlite_where=text("progress IS NOT NULL"),
        ),
        # The public progress page finds its order by the sha256 of the link's token.
        Index("ix_orders_progress_page_hash", "progress_page_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    village_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    town_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    district_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("catalogue_items.id"))
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"))
    status: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(12), default="mini_program")
    green_channel: Mapped[bool] = mapped_column(Boolean, default=False)
    # Who set the green channel flag as it stands: the resident (declared), the age on the
    # verified ID number (age), or the agent who confirmed or withdrew it (agent).
    green_channel_source: Mapped[str | None] = mapped_column(String(10))
    # 上门 / 预约: the agent visits the resident at home, or meets them at a set time.
    home_visit: Mapped[bool] = mapped_column(Boolean, default=False)
    appointment_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 1 when green channel, home visit or appointment: such orders sort first in staff lists.
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    note: Mapped[str | None] = mapped_column(Text)
    # {material_code: {"uploads": [ids], "state": "submitted|accepted|missing|rejected", "reason"}}
    materials: Mapped[dict[str, Any]] = mapped_column(JSON)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # When the current agent got it (assign, re-assign, hand-over): reminders count from here.
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the one notice to supplement (一次性告知) went out.
    supplement_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How many supplement notices (一次性告知) the order has had: a second is a rework round.
    supplement_rounds: Mapped[int] = mapped_column(SmallInteger, default=0)
    # 提出异议: how many times the resident said a handed-back order was not resolved; each
    # reopened it with a fresh clock (DAIBAN_ORDERS_DISPUTE_DAYS). A server default: the
    # submission's insert needs no value for it.
    dispute_rounds: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    # The first round's clock as it ended, kept at the first dispute (the reopened work uses
    # due_at, overdue_at and completed_at): the figures count the order's first 办结 by these.
    first_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 上报件 / 联办件: each department's part as it stands (app/orders/progress.py):
    # {"parts": [{"key", "department", "name", "step", "on", "at"}]}, from submission (no
    # parts yet); None for the other kinds of item.
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    first_contact_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # 全区通办: the resident's own village when they chose to be served by another station
    # of the district (village_id is that station's); NULL when served at home. An item
    # that must be handled where the resident is registered is handed over there (transfer).
    home_village_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    # The entrustment (委托书): photos of the signed paper form (an agent-entered order's),
    # and the PDF the service makes when the resident signs on the phone.
    entrustment_upload_ids: Mapped[list[int] | None] = mapped_column(JSON)
    # Signed on the phone (app/orders/entrustment.py): {"signedAt", "lines" (the text as
    # signed), "sha256" (of the text, printed on the PDF), "uploadId" (the PDF),
    # "signatureUploadId" (the hand-drawn PNG)}; NULL until then. Set once.
    entrustment_signature: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # 语音留言: the resident's voice notes given at submission (uploads of purpose voice).
    voice_note_upload_ids: Mapped[list[int] | None] = mapped_column(JSON(none_as_null=True))
    idempotency_key: Mapped[str | None] = mapped_column(String(80))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promised_days: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    # The clock's last start (acceptance or resumption) and the working days it runs for:
    # enough to recompute a provisional due date once the official schedule is entered.
    clock_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clock_days: Mapped[int | None] = mapped_column(Integer)
    # When the order was first found past its due time: it stays overdue through a hold.
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # While on hold the clock stops: the working days left are kept here.
    remaining_days: Mapped[int | None] = mapped_column(Integer)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(10))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    fees_collected_fen: Mapped[int] = mapped_column(Integer, default=0)
    delay_explanation: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivery_method: Mapped[str | None] = mapped_column(String(10))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When it reached a final status (归档, 不予受理, 撤回 or 终止); its files are removed
    # DAIBAN_RETENTION_ORDER_FILES_DAYS later (app/retention), and then files_removed_at set.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    files_removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The public progress page (/p/<token>, app/orders/progress_page.py): a random seed made
    # with the first slip, the token derived from it with the keyed hash (never stored), its
    # sha256 to find the order by; views counted; wrong digits counted for the lock-out.
    progress_page_seed: Mapped[str | None] = mapped_column(String(32))
    progress_page_hash: Mapped[str | None] = mapped_column(String(64))
    progress_page_views: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    progress_page_failures: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    progress_page_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    progress_page_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrderEvent(Base):
    """One line of the timeline (过程全公开): who did what, when, from which status to which."""

    __tablename__ = "order_events"
    __table_args__ = (
        # The events the figures count in a period (app/ledger/figures.py: FIGURE_EVENTS,
        # whose predicate this is): a small share of all events.
        Index(
            "ix_order_events_figures",
            "action",
            "at",
            postgresql_where=text("action IN ('progress', 'dispute')"),
            sqlite_where=text("action IN ('progress', 'dispute')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor_role: Mapped[str] = mapped_column(String(12))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OrderNumberCounter(Base):
    """SQLite: the daily sequence behind order numbers DB + yyyymmdd + 6 digits, shared by
    processes. PostgreSQL counts in `order_number_seq` (`OrderNumberDay`); a day counted
    here before that (migration 0032) goes on from its `last`."""

    __tablename__ = "order_number_counters"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger)


# PostgreSQL: every order number's sequence value comes from this sequence (migration 0032);
# a day's numbers count on from its `OrderNumberDay.base` (app/orders/submission.py).
ORDER_NUMBER_SEQUENCE = "order_number_seq"


class OrderNumberDay(Base):
    """PostgreSQL: where a day's order numbers start in `order_number_seq` — the day's
    number is the sequence's value less `base`. Written once, by the day's first
    submission. (SQLite counts in `order_number_counters`.)"""

    __tablename__ = "order_number_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    base: Mapped[int] = mapped_column(BigInteger)


class CalendarOverride(Base):
    """An admin's correction or entry of the official holiday schedule for one day."""

    __tablename__ = "calendar_overrides"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(String(60))


class CalendarYear(Base):
    """A year whose official schedule the admin has entered completely."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
