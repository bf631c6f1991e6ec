"""Firing the reminders that have come due: remind, escalate, 催办, 督办, expire, visit.

A batch is one transaction. It is first run whole (`together`): when any of its reminders
fails, the transaction is rolled back and the batch is run again with each reminder in
its own savepoint, so the one that fails is recorded and skipped without undoing the
others. (A savepoint each cost two round trips to PostgreSQL a reminder, on the way that
nearly always succeeds.) Several workers may run this at once: each batch takes reminders
no other worker holds, the moves are compare-and-set, and every message has a dedupe key,
so nothing is done twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models import Account, Order
from app.notifications import messages, reminders
from app.notifications.outbox import Message, notify, town_dispatchers
from app.orders import notices
from app.orders.handover import station_partner
from app.orders.moves import reassign, system_move
from app.orders.records import ORDER_BY_ID, guide_version
from app.orders.states import OPEN
from app.ratings import complaints, rectification
from app.ratings import service as ratings

log = logging.getLogger("daiban.reminders")
BATCH = 100


class BatchFailed(Exception):
    """A reminder of a batch run `together` failed: run the batch again one by one."""


def run_due(session: Session, ctx: Context, limit: int = BATCH, *, together: bool = False) -> int:
    """Fire up to `limit` due reminders; returns how many were handled.

    `together`: without a savepoint each; the first reminder that fails raises
    `BatchFailed`, and the caller rolls the transaction back and runs the batch again
    without `together`, where each reminder has its savepoint and one that fails is
    logged and closed as "error"."""
    now = ctx.now()
    handled = 0
    for reminder in reminders.due_reminders(session, now, limit):
        if together:
            try:
                outcome = _fire(session, ctx, reminder, now)
            except Exception as exc:
                raise BatchFailed(reminder.id) from exc
        else:
            try:
                with session.begin_nested():
                    outcome = _fire(session, ctx, reminder, now)
            except Exception:  # one bad reminder must not stop the others
                log.exception("reminder failed", extra={"reminder": reminder.id})
                outcome = "error"
        if reminders.close(session, reminder.id, now, outcome):
            handled += 1
    return handled


def _send(
    session: Session,
    ctx: Context,
    reminder: Any,
    recipients: list[int | None],
    message: Message,
    now: datetime,
) -> None:
    """Keyed by the reminder itself: firing it again adds no message."""
    people = [r for r in recipients if r is not None]
    key = f"{reminder.kind}:{reminder.order_id}:{reminder.basis}"
    notify(session, ctx, people, message, key, now)


def _fire(session: Session, ctx: Context, reminder: Any, now: datetime) -> str:
    kind, basis = reminder.kind, reminder.basis
    if kind.startswith("complaint_"):
        return complaints.fire(session, ctx, reminder, now)
    if kind.startswith("rectify_"):
        return rectification.fire(session, ctx, reminder, now)
    order = session.execute(ORDER_BY_ID.statement, {"id": reminder.order_id}).one()
    item = guide_version(session, ctx, order.item_version_id).name
    o = notices.facts(ctx, order, item, order.status, order.due_at)
    jobs = ctx.settings.scheduler
    if kind in ("take_remind", "take_escalate"):
        if order.status != "assigned" or not reminders.matches(basis, order.assigned_at):
            return "stale"
        if kind == "take_remind":
            hours = jobs.take_remind_working_hours
            text = f"已派给您超过{hours}个工作小时,请尽快接单。"
            message = messages.for_agent(o, "take_reminder", "接单提醒", text)
            _send(session, ctx, reminder, [order.agent_id], message, now)
            return "sent"
        return _escalate(session, ctx, reminder, order, o, now)
    if kind == "due_soon":
        if order.status != "accepted" or not reminders.matches(basis, order.due_at):
            return "stale"
        due = messages.last_day(order.due_at, ctx.settings.zone)
        message = messages.for_agent(o, "due_soon", "催办", f"将于{due}到期,请抓紧办结。")
        _send(session, ctx, reminder, [order.agent_id], message, now)
        return "sent"
    if kind == "overdue":
        return _overdue(session, ctx, reminder, order, o, now)
    if kind in ("supplement_remind", "supplement_expire"):
        if order.status != "supplement_required" or not reminders.matches(
            basis, order.supplement_requested_at
        ):
            return "stale"
        if kind == "supplement_remind":
            message = messages.supplement_reminder(o, jobs.supplement_expire_days)
            _send(session, ctx, reminder, [order.resident_id], message, now)
            return "sent"
        days = jobs.supplement_expire_days
        note = f"一次性告知补正后{days}天内未补正材料,系统自动撤回委托"
        return "expired" if system_move(session, ctx, order, "expire", note) else "stale"
    if kind == "appointment":
        if order.status not in OPEN or not reminders.matches(basis, order.appointment_at):
            return "stale"
        recipients = [(order.resident_id, False), (order.agent_id, True)]
        for person, staff in recipients:
            if person is not None:
                message = messages.appointment_reminder(
                    o, order.appointment_at, order.home_visit, for_agent=staff
                )
                _send(session, ctx, reminder, [person], message, now)
        return "sent"
    if kind in ("rating_remind", "rating_default"):
        if order.status != "delivered" or not reminders.matches(basis, order.delivered_at):
            return "stale"
        if kind == "rating_default":
            return "defaulted" if ratings.record_default(session, ctx, order) else "stale"
        left = ctx.settings.ratings.window_days - ctx.settings.ratings.remind_days
        _send(session, ctx, reminder, [order.resident_id], messages.rating_reminder(o, left), now)
        return "sent"
    return "unknown"


def _escalate(
    session: Session,
    ctx: Context,
    reminder: Any,
    order: Any,
    o: messages.OrderFacts,
    now: datetime,
) -> str:
    """Still not taken after the working days allowed: tell the dispatchers and, when the
    station's other post is on duty, hand it over (AB岗)."""
    days = ctx.settings.scheduler.take_escalate_working_days
    agent = session.get(Account, order.agent_id)
    assert agent is not None
    try:
        partner: Account | None = station_partner(session, agent, ctx.today())
    except errors.DomainError:
        partner = None
    moved = False
    if partner is not None:
        # Only while it is still the untaken assignment this reminder was set for.
        still = (
            Order.id == order.id,
            Order.status == "assigned",
            Order.agent_id == order.agent_id,
            Order.assigned_at == order.assigned_at,
        )
        note = f"{agent.name}超过{days}个工作日未接单,自动改派给{partner.name}"
        rule = {"rule": "take_escalation"}
        moved = bool(reassign(session, ctx, None, still, partner, note, rule, now))
    if moved and partner is not None:
        text = f"派给{agent.name}超过{days}个工作日未接单,已自动改派给{partner.name}。"
    else:
        text = f"派给{agent.name}超过{days}个工作日未接单,本站无人在岗可接替,请改派。"
    message = messages.for_agent(o, "take_escalated", "超时未接单", text, note=agent.name)
    _send(session, ctx, reminder, list(town_dispatchers(session, ctx, order.town_id)), message, now)
    return "reassigned" if moved else "escalated"


def _overdue(
    session: Session, ctx: Context, reminder: Any, order: Any, o: Any, now: datetime
) -> str:
    """督办: mark it overdue, tell the agent and the dispatchers, and again each working
    morning until a delay explanation is filed."""
    running = order.status == "accepted" or (
        order.status == "on_hold" and order.overdue_at is not None
    )
    if not running or not reminders.matches(reminder.basis, order.due_at):
        return "stale"
    if order.delay_explanation:
        return "explained"
    if order.overdue_at is None:
        session.execute(
            update(Order)
            .where(Order.id == order.id, Order.overdue_at.is_(None))
            .values(overdue_at=order.due_at)
            .execution_options(synchronize_session=False)
        )
    agent = notices.agent_name(session, order.agent_id)
    to_agent = messages.overdue(o, agent, for_dispatcher=False)
    _send(session, ctx, reminder, [order.agent_id], to_agent, now)
    to_dispatchers = messages.overdue(o, agent, for_dispatcher=True)
    _send(
        session,
        ctx,
        reminder,
        list(town_dispatchers(session, ctx, order.town_id)),
        to_dispatchers,
        now,
    )
    reminders.overdue_again(session, ctx, order.id, order.due_at, now)
    return "sent"
