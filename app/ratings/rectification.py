"""整改: a bad rating opens a case for the town. The dispatcher calls the resident back
(verify), fixes or explains, answers the resident by the deadline (15 working days by
default), and the resident grades the fix in a follow-up (回访). Reminders come before the
deadline; the district's admins hear after it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import audit, errors, scope
from app.context import Context
from app.models import Account, Order, Rating, Rectification
from app.models.tables import CASES
from app.notifications import reminders
from app.notifications.outbox import Message, notify, town_dispatchers
from app.orders.records import guide_version, order_in_scope
from app.ratings.outputs import FOLLOW_UP_NAMES, GRADE_NAMES, CaseView
from app.security.tokens import Principal
from app.work_calendar import work_calendar

OPEN = ("open", "verified")
MAX_PAGE = 50


def _message(kind: str, title: str, body: str, order_id: int, **data: Any) -> Message:
    return Message(kind, title, body, {"title": title, **data}, order_id)


def district_admins(session: Session, district_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Account.id).where(
                Account.role == "admin",
                Account.region_id == district_id,
                Account.disabled_at.is_(None),
            )
        )
    )


def open_case(session: Session, ctx: Context, rating_id: int, order: Any) -> int:
    """A bad rating's case, due in N working days; the town's dispatchers are told."""
    now = ctx.now()
    days = ctx.settings.ratings.rectify_working_days
    due = work_calendar(session, ctx).due(now, days).due_at
    case_id = int(
        session.execute(
            CASES.insert()
            .values(
                rating_id=rating_id,
                order_id=order.id,
                town_id=order.town_id,
                district_id=order.district_id,
                status="open",
                opened_at=now,
                due_at=due,
            )
            .returning(CASES.c.id)
        ).scalar_one()
    )
    reminders.for_deadline(
        session,
        ctx,
        order.id,
        "rectify",
        f"case:{case_id}",
        due,
        now,
        ctx.settings.ratings.rectify_remind_working_days,
    )
    item = guide_version(session, ctx, order.item_version_id).name
    message = _message(
        "bad_rating",
        "收到差评,请整改",
        f"办件{order.number}“{item}”收到差评,请在{days}个工作日内核实、整改并答复群众。",
        order.id,
        number=order.number,
        item=item,
        dueAt=due.isoformat(),
    )
    notify(
        session, ctx, town_dispatchers(session, ctx, order.town_id), message, f"case:{case_id}", now
    )
    return case_id


def _case_in_scope(session: Session, principal: Principal, case_id: int) -> Rectification:
    case = session.get(Rectification, case_id)
    if case is None or not scope.in_scope(principal, case, scope.CASE):
        raise errors.NotFound("没有找到该整改事项")
    return case


def case_view(session: Session, ctx: Context, case: Rectification, *, identity: bool) -> CaseView:
    rating = session.get(Rating, case.rating_id)
    order = session.get(Order, case.order_id)
    assert rating is not None and order is not None
    agent = session.get(Account, rating.agent_id) if rating.agent_id else None
    resident_name = resident_phone = None
    if identity:  # the dispatcher or admin handling it calls the resident back
        resident = session.get(Account, rating.resident_id)
        if resident is not None:
            resident_name = resident.name
            resident_phone = (
                ctx.cipher.decrypt(resident.phone_enc, context="phone")
                if resident.phone_enc
                else None
            )
    return CaseView(
        id=case.id,
        status=case.status,
        order_id=order.id,
        order_number=order.number,
        item_name=guide_version(session, ctx, order.item_version_id).name,
        agent_name=agent.name if agent else None,
        grade=rating.grade,
        grade_name=GRADE_NAMES[rating.grade],
        tags=list(rating.tags),
        comment=rating.comment if rating.comment_status == "passed" else None,
        opened_at=case.opened_at,
        due_at=case.due_at,
        overdue=case.status in OPEN and ctx.now() >= case.due_at,
        verified_at=case.verified_at,
        verify_note=case.verify_note,
        answered_at=case.answered_at,
        answer_kind=case.answer_kind,
        answer=case.answer,
        follow_up=case.follow_up,
        follow_up_name=FOLLOW_UP_NAMES.get(case.follow_up or ""),
        followed_up_at=case.followed_up_at,
        escalated_at=case.escalated_at,
        resident_name=resident_name,
        resident_phone=resident_phone,
    )


def cases(
    session: Session, ctx: Context, principal: Principal, status: str | None
) -> list[CaseView]:
    column = CASES.c.town_id if principal.role == "dispatcher" else CASES.c.district_id
    query = select(Rectification).where(column == principal.region_id)
    if status:
        query = query.where(Rectification.status == status)
    rows = session.scalars(query.order_by(Rectification.id.desc()).limit(MAX_PAGE)).all()
    return [case_view(session, ctx, c, identity=False) for c in rows]


def case_detail(session: Session, ctx: Context, principal: Principal, case_id: int) -> CaseView:
    """With the resident's name and phone for the call-back: a read of personal data, so it
    is audited (run it in a write transaction)."""
    case = _case_in_scope(session, principal, case_id)
    audit.record(session, principal, "pii.read", f"rating-case:{case.id}", ctx.now())
    return case_view(session, ctx, case, identity=True)


def _step(
    session: Session,
    principal: Principal,
    case_id: int,
    allowed: tuple[str, ...],
    values: dict[str, Any],
) -> Rectification:
    """A compare-and-set on the case's status: of two steps at once exactly one counts."""
    case = _case_in_scope(session, principal, case_id)
    won = session.execute(
        update(Rectification)
        .where(Rectification.id == case.id, Rectification.status.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.Conflict(f"整改事项当前为“{case.status}”,不能进行这一步")
    session.refresh(case)
    return case


def verify(
    session: Session, ctx: Context, principal: Principal, case_id: int, note: str
) -> CaseView:
    """核实: the resident was called back; what they said and what was found."""
    if not note.strip():
        raise errors.InvalidInput(errors=[{"field": "note", "message": "请填写核实情况"}])
    values = {
        "status": "verified",
        "verified_at": ctx.now(),
        "verified_by": principal.account_id,
        "verify_note": note.strip(),
    }
    case = _step(session, principal, case_id, ("open",), values)
    return case_view(session, ctx, case, identity=True)


def answer(
    session: Session, ctx: Context, principal: Principal, case_id: int, kind: str, text: str
) -> CaseView:
    """整改答复: what was fixed, or why nothing could be; the resident is asked to grade it."""
    if not text.strip():
        raise errors.InvalidInput(errors=[{"field": "answer", "message": "请填写整改答复"}])
    now = ctx.now()
    values = {
        "status": "answered",
        "answered_at": now,
        "answered_by": principal.account_id,
        "answer_kind": kind,
        "answer": text.strip(),
    }
    case = _step(session, principal, case_id, OPEN, values)
    rating = session.get(Rating, case.rating_id)
    assert rating is not None
    message = _message(
        "rectification_answered",
        "差评整改答复",
        f"您对办件的评价已收到整改答复:{text.strip()}。请告诉我们您是否满意。",
        case.order_id,
        note=text.strip(),
    )
    notify(session, ctx, [rating.resident_id], message, f"case-answer:{case.id}", now)
    return case_view(session, ctx, case, identity=True)


def follow_up(
    session: Session,
    ctx: Context,
    principal: Principal,
    order_id: int,
    grade: str,
    comment: str | None,
) -> CaseView:
    """回访: the resident grades the fix; the case is closed."""
    order_in_scope(session, principal, order_id)
    case = session.scalar(select(Rectification).where(Rectification.order_id == order_id))
    if case is None:
        raise errors.NotFound("该办件没有整改事项")
    won = session.execute(
        update(Rectification)
        .where(Rectification.id == case.id, Rectification.status == "answered")
        .values(
            status="closed",
            follow_up=grade,
            follow_up_comment=(comment or "").strip() or None,
            followed_up_at=ctx.now(),
        )
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.Conflict("整改答复之后才能回访评价")
    session.refresh(case)
    return case_view(session, ctx, case, identity=False)


def fire(session: Session, ctx: Context, reminder: Any, now: datetime) -> str:
    """rectify_remind: tell the dispatchers the deadline is near; rectify_escalate: past it,
    tell the district's admins."""
    case_id = int(reminder.basis.split(":", 1)[1])
    case = session.get(Rectification, case_id)
    if case is None or case.status not in OPEN:
        return "stale"
    order = session.get(Order, case.order_id)
    assert order is not None
    item = guide_version(session, ctx, order.item_version_id).name
    due = f"{case.due_at.astimezone(ctx.settings.zone):%m月%d日}"
    key = f"{reminder.kind}:{case.id}"
    if reminder.kind == "rectify_remind":
        message = _message(
            "rectify_reminder",
            "差评整改即将到期",
            f"办件{order.number}“{item}”的差评整改须在{due}前答复群众,请抓紧。",
            order.id,
        )
        notify(session, ctx, town_dispatchers(session, ctx, case.town_id), message, key, now)
        return "sent"
    session.execute(
        update(Rectification)
        .where(Rectification.id == case.id, Rectification.escalated_at.is_(None))
        .values(escalated_at=now)
    )
    message = _message(
        "rectify_overdue",
        "差评整改超期",
        f"办件{order.number}“{item}”的差评整改已超过答复期限({due}),请督办。",
        order.id,
    )
    notify(session, ctx, district_admins(session, case.district_id), message, key, now)
    return "escalated"
