"""投诉: a resident complains about an order or an agent; the town answers by the end of the
next working day, is reminded on the last morning and the district's admins hear once it is
late; the resident says whether the answer resolved it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import errors, scope
from app.context import Context
from app.models import Account, Complaint, Order, Region
from app.models.tables import COMPLAINTS
from app.notifications import reminders
from app.notifications.outbox import Message, notify, town_dispatchers
from app.orders.records import order_in_scope, upload_problems
from app.ratings.outputs import ComplaintView
from app.ratings.rectification import district_admins
from app.security.tokens import Principal
from app.work_calendar import work_calendar

MAX_PAGE = 50


def complain(
    session: Session,
    ctx: Context,
    principal: Principal,
    *,
    order_id: int | None,
    agent_id: int | None,
    text: str,
    upload_ids: list[int],
) -> ComplaintView:
    problems = upload_problems(session, principal, {"uploadIds": upload_ids})
    if not text.strip():
        problems.append({"field": "text", "message": "请写明投诉的事情"})
    if order_id is None and agent_id is None:
        problems.append({"field": "orderId", "message": "请选择投诉的办件或代办员"})
    if problems:
        raise errors.InvalidInput("投诉内容有误", errors=problems)
    order = order_in_scope(session, principal, order_id) if order_id is not None else None
    agent = _agent_for(session, principal, agent_id, order) if agent_id is not None else None
    town_id, district_id = _town_of(session, principal, order, agent)
    now = ctx.now()
    due = work_calendar(session, ctx).due(now, 1).due_at
    complaint = Complaint(
        resident_id=principal.account_id,
        order_id=order.id if order else None,
        agent_id=agent.id if agent else (order.agent_id if order else None),
        town_id=town_id,
        district_id=district_id,
        text=text.strip(),
        upload_ids=upload_ids,
        status="open",
        submitted_at=now,
        due_at=due,
    )
    session.add(complaint)
    session.flush()
    reminders.for_deadline(
        session, ctx, complaint.order_id, "complaint", f"complaint:{complaint.id}", due, now, 1
    )
    message = Message(
        "complaint",
        "收到群众投诉",
        f"收到一条投诉:{complaint.text[:60]}。请在明天下班前答复。",
        {"title": "收到群众投诉", "note": complaint.text, "dueAt": due.isoformat()},
        complaint.order_id,
    )
    notify(
        session,
        ctx,
        town_dispatchers(session, ctx, town_id),
        message,
        f"complaint:{complaint.id}",
        now,
    )
    return view(session, ctx, complaint)


def _agent_for(session: Session, principal: Principal, agent_id: int, order: Any) -> Account:
    """An agent of the resident's own town (or of the order complained about)."""
    agent = session.get(Account, agent_id)
    village = session.get(Region, agent.region_id) if agent and agent.region_id else None
    home = session.get(Region, principal.region_id) if principal.region_id else None
    towns = {order.town_id} if order is not None else set()
    if home is not None:
        towns.add(home.town_id)
    if agent is None or agent.role != "agent" or village is None or village.town_id not in towns:
        raise errors.NotFound("没有找到该代办员")
    return agent


def _town_of(
    session: Session, principal: Principal, order: Any, agent: Account | None
) -> tuple[int, int]:
    if order is not None:
        return int(order.town_id), int(order.district_id)
    region = session.get(Region, agent.region_id if agent else principal.region_id)
    if region is None or region.town_id is None or region.district_id is None:
        raise errors.InvalidInput(errors=[{"field": "agentId", "message": "请先填写所在村"}])
    return region.town_id, region.district_id


def _in_scope(session: Session, principal: Principal, complaint_id: int) -> Complaint:
    complaint = session.get(Complaint, complaint_id)
    if complaint is None or not scope.in_scope(principal, complaint, scope.COMPLAINT):
        raise errors.NotFound("没有找到该投诉")
    return complaint


def view(session: Session, ctx: Context, c: Complaint, *, staff: bool = False) -> ComplaintView:
    order = session.get(Order, c.order_id) if c.order_id else None
    agent = session.get(Account, c.agent_id) if c.agent_id else None
    resident = session.get(Account, c.resident_id) if staff else None
    return ComplaintView(
        id=c.id,
        status=c.status,
        order_id=c.order_id,
        order_number=order.number if order else None,
        agent_id=c.agent_id,
        agent_name=agent.name if agent else None,
        text=c.text,
        upload_ids=list(c.upload_ids),
        submitted_at=c.submitted_at,
        due_at=c.due_at,
        overdue=c.status == "open" and ctx.now() >= c.due_at,
        answer=c.answer,
        answered_at=c.answered_at,
        answered_on_time=(c.answered_at <= c.due_at) if c.answered_at else None,
        resolved=c.resolved,
        feedback=c.feedback,
        escalated_at=c.escalated_at,
        resident_name=resident.name if resident else None,
    )


def complaint_detail(
    session: Session, ctx: Context, principal: Principal, complaint_id: int
) -> ComplaintView:
    complaint = _in_scope(session, principal, complaint_id)
    return view(session, ctx, complaint, staff=principal.role != "resident")


def complaints(
    session: Session, ctx: Context, principal: Principal, status: str | None
) -> list[ComplaintView]:
    column = {
        "resident": COMPLAINTS.c.resident_id,
        "dispatcher": COMPLAINTS.c.town_id,
        "admin": COMPLAINTS.c.district_id,
    }[principal.role]
    scope = principal.account_id if principal.role == "resident" else principal.region_id
    query = select(Complaint).where(column == scope)
    if status:
        query = query.where(Complaint.status == status)
    rows = session.scalars(query.order_by(Complaint.id.desc()).limit(MAX_PAGE)).all()
    return [view(session, ctx, c, staff=principal.role != "resident") for c in rows]


def answer(
    session: Session, ctx: Context, principal: Principal, complaint_id: int, text: str
) -> ComplaintView:
    complaint = _in_scope(session, principal, complaint_id)
    if not text.strip():
        raise errors.InvalidInput(errors=[{"field": "answer", "message": "请填写答复"}])
    now = ctx.now()
    won = session.execute(
        update(Complaint)
        .where(Complaint.id == complaint.id, Complaint.status == "open")
        .values(
            status="answered",
            answer=text.strip(),
            answered_at=now,
            answered_by=principal.account_id,
        )
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.Conflict("该投诉已经答复过了")
    session.refresh(complaint)
    message = Message(
        "complaint_answered",
        "投诉已答复",
        f"您的投诉已答复:{complaint.answer}。问题解决了吗?请在小程序中告诉我们。",
        {"title": "投诉已答复", "note": complaint.answer},
        complaint.order_id,
    )
    notify(session, ctx, [complaint.resident_id], message, f"complaint-answer:{complaint.id}", now)
    return view(session, ctx, complaint, staff=True)


def feedback(
    session: Session,
    ctx: Context,
    principal: Principal,
    complaint_id: int,
    resolved: bool,
    text: str | None,
) -> ComplaintView:
    """The resident says whether the answer resolved the matter; the complaint is closed."""
    complaint = _in_scope(session, principal, complaint_id)
    won = session.execute(
        update(Complaint)
        .where(Complaint.id == complaint.id, Complaint.status == "answered")
        .values(
            status="closed",
            resolved=resolved,
            feedback=(text or "").strip() or None,
            feedback_at=ctx.now(),
        )
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.Conflict("投诉答复之后才能评价是否解决")
    session.refresh(complaint)
    return view(session, ctx, complaint)


def fire(session: Session, ctx: Context, reminder: Any, now: datetime) -> str:
    complaint = session.get(Complaint, int(reminder.basis.split(":", 1)[1]))
    if complaint is None or complaint.status != "open":
        return "stale"
    key = f"{reminder.kind}:{complaint.id}"
    due = f"{complaint.due_at.astimezone(ctx.settings.zone):%m月%d日}"
    if reminder.kind == "complaint_remind":
        message = Message(
            "complaint_reminder",
            "投诉今天须答复",
            f"投诉“{complaint.text[:40]}”须在今天下班前答复群众。",
            {"title": "投诉今天须答复", "note": complaint.text},
            complaint.order_id,
        )
        notify(session, ctx, town_dispatchers(session, ctx, complaint.town_id), message, key, now)
        return "sent"
    session.execute(
        update(Complaint)
        .where(Complaint.id == complaint.id, Complaint.escalated_at.is_(None))
        .values(escalated_at=now)
    )
    message = Message(
        "complaint_overdue",
        "投诉超时未答复",
        f"投诉“{complaint.text[:40]}”超过答复期限({due})仍未答复,请督办。",
        {"title": "投诉超时未答复", "note": complaint.text},
        complaint.order_id,
    )
    notify(session, ctx, district_admins(session, complaint.district_id), message, key, now)
    return "escalated"
