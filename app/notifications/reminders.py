"""Reminders: written when an order enters a state that must not last (assigned, running,
waiting for a supplement, an appointment), fired by the scheduler when they come due.

Each reminder carries the mark of the state it watches (`basis`: when the order was
assigned, its due time, when the supplement was asked for, the appointment); when it
comes due and the order has moved on, it is dropped. Times are working time for staff:
"2 working hours", "the next working morning", never a holiday.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from app.context import Context
from app.models import Reminder
from app.models.tables import REMINDERS
from app.work_calendar import work_calendar
from app.workdays import WorkingHours, last_day

INSERT = text(
    "INSERT INTO reminders (order_id, kind, basis, due_at, status) "
    "VALUES (:order_id, :kind, :basis, :due_at, 'pending') "
    "ON CONFLICT (order_id, kind, basis) DO NOTHING"
).bindparams(bindparam("due_at", type_=Reminder.due_at.type))
# Several workers may look at once: each takes what no other holds (SQLite has one writer).
DUE = (
    select(REMINDERS)
    .where(REMINDERS.c.status == "pending", REMINDERS.c.due_at <= bindparam("now"))
    .order_by(REMINDERS.c.due_at, REMINDERS.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
DONE = (
    update(REMINDERS)
    .where(REMINDERS.c.id == bindparam("rid"), REMINDERS.c.status == "pending")
    .values(status="done", done_at=bindparam("now"), outcome=bindparam("outcome"))
)


def working_hours(session: Session, ctx: Context) -> WorkingHours:
    start, end = ctx.settings.working_hours
    return WorkingHours(work_calendar(session, ctx), start, end)


def mark(moment: datetime | None) -> str:
    """A state's mark as stored in `basis`."""
    return moment.isoformat() if moment else ""


def matches(basis: str, moment: datetime | None) -> bool:
    """Does the order still carry the mark the reminder was written for? (A repeat of a
    reminder adds `|<day>` to keep its own key.)"""
    return basis.split("|", 1)[0] == mark(moment)


def schedule(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(INSERT, rows)


def _row(order_id: int | None, kind: str, basis: str, due_at: datetime) -> dict[str, Any]:
    return {"order_id": order_id, "kind": kind, "basis": basis, "due_at": due_at}


def after_assignment(session: Session, ctx: Context, order_id: int, assigned_at: datetime) -> None:
    """Not taken within N working hours: remind the agent; within M working days: escalate."""
    hours = working_hours(session, ctx)
    jobs = ctx.settings.scheduler
    schedule(
        session,
        [
            _row(
                order_id,
                "take_remind",
                mark(assigned_at),
                hours.add_working_hours(assigned_at, jobs.take_remind_working_hours),
            ),
            _row(
                order_id,
                "take_escalate",
                mark(assigned_at),
                hours.add_working_days(assigned_at, jobs.take_escalate_working_days),
            ),
        ],
    )


def _ahead(hours: WorkingHours, due_at: datetime, working_days: int) -> datetime:
    """The morning `working_days` working days ahead of a deadline: 1 is the last day's."""
    day = last_day(due_at, hours.calendar.zone)
    if not hours.calendar.is_workday(day):
        day = hours.working_day_before(day)
    for _ in range(working_days - 1):
        day = hours.working_day_before(day)
    return hours.opening(day)


def after_clock_start(
    session: Session, ctx: Context, order_id: int, due_at: datetime, now: datetime
) -> None:
    """催办 on the morning N working days before the last day (unless that is already past),
    督办 at the first working moment once it is overdue."""
    hours = working_hours(session, ctx)
    rows = [_row(order_id, "overdue", mark(due_at), hours.next_working_moment(due_at))]
    soon = _ahead(hours, due_at, ctx.settings.scheduler.due_soon_working_days)
    if soon > now:
        rows.append(_row(order_id, "due_soon", mark(due_at), soon))
    schedule(session, rows)


def for_deadline(
    session: Session,
    ctx: Context,
    order_id: int | None,
    prefix: str,
    basis: str,
    due_at: datetime,
    now: datetime,
    remind_working_days: int,
) -> None:
    """`<prefix>_remind` on the morning `remind_working_days` ahead of a deadline (unless
    already past) and `<prefix>_escalate` at the first working moment after it."""
    hours = working_hours(session, ctx)
    rows = [_row(order_id, f"{prefix}_escalate", basis, hours.next_working_moment(due_at))]
    remind = _ahead(hours, due_at, remind_working_days)
    if remind > now:
        rows.append(_row(order_id, f"{prefix}_remind", basis, remind))
    schedule(session, rows)


def before_rating_default(
    session: Session, ctx: Context, order_id: int, delivered_at: datetime
) -> None:
    """Natural days for residents: a reminder to rate, then the default rating."""
    rules = ctx.settings.ratings
    schedule(
        session,
        [
            _row(
                order_id,
                "rating_remind",
                mark(delivered_at),
                delivered_at + timedelta(days=rules.remind_days),
            ),
            _row(
                order_id,
                "rating_default",
                mark(delivered_at),
                delivered_at + timedelta(days=rules.window_days),
            ),
        ],
    )


def overdue_again(
    session: Session, ctx: Context, order_id: int, due_at: datetime, now: datetime
) -> None:
    """督办 again on the next working morning, until a delay explanation is filed."""
    hours = working_hours(session, ctx)
    day = hours.calendar.add_working_days(hours.calendar.local_date(now), 1)
    schedule(session, [_row(order_id, "overdue", f"{mark(due_at)}|{day}", hours.opening(day))])


def after_supplement_request(
    session: Session, ctx: Context, order_id: int, requested_at: datetime
) -> None:
    hours = working_hours(session, ctx)
    jobs = ctx.settings.scheduler
    remind = requested_at + timedelta(days=jobs.supplement_remind_days)
    expire = requested_at + timedelta(days=jobs.supplement_expire_days)
    schedule(
        session,
        [
            _row(
                order_id, "supplement_remind", mark(requested_at), hours.next_working_moment(remind)
            ),
            _row(
                order_id, "supplement_expire", mark(requested_at), hours.next_working_moment(expire)
            ),
        ],
    )


def before_appointment(
    session: Session, ctx: Context, order_id: int, appointment_at: datetime, now: datetime
) -> None:
    """The morning of the working day before (at once when that is already past)."""
    hours = working_hours(session, ctx)
    day = hours.working_day_before(hours.calendar.local_date(appointment_at))
    schedule(
        session,
        [_row(order_id, "appointment", mark(appointment_at), max(hours.opening(day), now))],
    )


def due_reminders(session: Session, now: datetime, limit: int) -> list[Any]:
    return list(session.execute(DUE, {"now": now, "limit": limit}))


def close(session: Session, reminder_id: int, now: datetime, outcome: str) -> bool:
    """Mark it done; False when another worker already did."""
    result = session.execute(DONE, {"rid": reminder_id, "now": now, "outcome": outcome})
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
