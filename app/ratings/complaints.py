"""投诉: a resident complains about an order or an agent, in the mini-program or by phone,
in person or by letter, recorded then by the town's staff (seed 002: 投诉可采用口头、电话或书面
形式); the town answers 当日或次日, by the end of the next natural day or of the next working
day (DAIBAN_RATINGS_COMPLAINT_NEXT_DAY), is reminded on the last working morning and the
district's admins hear once it is late; the resident says whether the answer resolved it.

A complaint recorded by staff names the complainant by phone or ID number, found through
the keyed look-up hashes (nothing is decrypted to search; the look-up is audited), or is
anonymous. A complainant with their own mini-program account gets the answer there; for one
without, the phone and ID number they gave are kept encrypted on the complaint, and whoever
answers says how the answer reached them (电话回复, 当面答复, 书面答复, 公示答复)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import audit, errors, scope
from app.context import Context
from app.models import Account, Complaint, Order, Region, Upload
from app.models.ratings import AnsweredVia, StaffChannel
from app.models.tables import COMPLAINTS
from app.notifications import reminders
from app.notifications.messages import last_day
from app.notifications.outbox import Message, notify, town_dispatchers
from app.orders.queries import SCOPE_COLUMN
from app.orders.records import order_in_scope, upload_problems
from app.ratings.outputs import ANSWERED_VIA_NAMES, CHANNEL_NAMES, ComplaintView
from app.ratings.rectification import district_admins
from app.security import identity
from app.security.pii import mask_id_number, mask_name, mask_phone
from app.security.tokens import Principal
from app.uploads.service import keep_for_case
from app.work_calendar import work_calendar

MAX_PAGE = 50
STAFF = ("dispatcher", "admin")


def complaint_due(session: Session, ctx: Context, now: datetime) -> datetime:
    """当日或次日给予答复: the end (24:00) of the next natural day, or of the next working
    day, as DAIBAN_RATINGS_COMPLAINT_NEXT_DAY says."""
    calendar = work_calendar(session, ctx)
    if ctx.settings.ratings.complaint_next_day == "working":
        return calendar.due(now, 1).due_at
    return calendar.end_of(calendar.local_date(now) + timedelta(days=1))


def _due_text(ctx: Context, due: datetime) -> str:
    """The deadline as people say it: 11月24日24时 (the end of that day)."""
    return f"{last_day(due, ctx.settings.zone)}24时"


def _upload_problems(
    session: Session, principal: Principal, upload_ids: list[int]
) -> list[dict[str, str]]:
    """The caller's own finished uploads, not part of an order, made for a complaint."""
    problems = upload_problems(session, principal, {"uploadIds": upload_ids})
    if upload_ids and not problems:
        purposes = session.scalars(select(Upload.purpose).where(Upload.id.in_(upload_ids)))
        if any(purpose != "complaint" for purpose in purposes):
            problems.append({"field": "uploadIds", "message": "请上传用途为投诉(complaint)的照片"})
    return problems


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
    problems = _upload_problems(session, principal, upload_ids)
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
    due = complaint_due(session, ctx, now)
    complaint = Complaint(
        channel="mini_program",
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
    keep_for_case(session, principal, complaint.upload_ids, f"complaint:{complaint.id}")
    _opened(session, ctx, complaint, now)
    return view(session, ctx, complaint)


def _opened(session: Session, ctx: Context, complaint: Complaint, now: datetime) -> None:
    """The same for every channel: the reminder and the escalation, the town's dispatchers
    told at once."""
    due = complaint.due_at
    reminders.for_deadline(
        session, ctx, complaint.order_id, "complaint", f"complaint:{complaint.id}", due, now, 1
    )
    how = CHANNEL_NAMES[complaint.channel]
    message = Message(
        "complaint",
        "收到群众投诉",
        f"收到一条{how}投诉:{complaint.text[:60]}。请在{_due_text(ctx, due)}前答复。",
        {"title": "收到群众投诉", "note": complaint.text, "dueAt": due.isoformat()},
        complaint.order_id,
    )
    notify(
        session,
        ctx,
        town_dispatchers(session, ctx, complaint.town_id),
        message,
        f"complaint:{complaint.id}",
        now,
    )


@dataclass(frozen=True)
class Received:
    """A complaint a staff member took by phone, in person or by letter."""

    channel: StaffChannel
    text: str
    phone: str | None = None
    id_number: str | None = None
    name: str | None = None  # as the complainant gave it, if they did
    anonymous: bool = False
    order_id: int | None = None
    order_number: str | None = None
    agent_id: int | None = None
    upload_ids: tuple[int, ...] = ()


def record(
    session: Session, ctx: Context, principal: Principal, received: Received
) -> ComplaintView:
    """Record a complaint received by phone, in person or by letter, for an order or an
    agent of the caller's town (a dispatcher) or district (an admin). The complainant is
    found by ID number or phone through the look-up hashes (audited as a search of personal
    data, its purpose the recording); one without an account is kept as a contact."""
    if principal.role not in STAFF or principal.region_id is None:
        raise errors.Forbidden()
    upload_ids = list(received.upload_ids)
    problems = _upload_problems(session, principal, upload_ids)
    text = received.text.strip()
    if not text:
        problems.append({"field": "text", "message": "请写明投诉的事情"})
    phone = (received.phone or "").strip() or None
    id_number = identity.normalize_id_number(received.id_number or "") or None
    name = (received.name or "").strip() or None
    if received.anonymous and (phone or id_number or name):
        problems.append(
            {"field": "anonymous", "message": "匿名投诉不记录投诉人的姓名、电话和身份证号"}
        )
    elif not received.anonymous and not (phone or id_number):
        problems.append(
            {"field": "phone", "message": "请填写投诉人的电话或身份证号,或登记为匿名投诉"}
        )
    if phone and not identity.is_phone(phone):
        problems.append({"field": "phone", "message": "电话号码格式不正确"})
    if id_number:
        problem = identity.id_number_problem(id_number, today=ctx.today())
        if problem:
            problems.append({"field": "idNumber", "message": problem})
    if name and len(name) > 20:
        problems.append({"field": "name", "message": "姓名不超过20个字"})
    if received.order_id is None and not received.order_number and received.agent_id is None:
        problems.append({"field": "orderNumber", "message": "请填写投诉的办件编号或选择代办员"})
    if received.order_id is not None and received.order_number:
        problems.append({"field": "orderNumber", "message": "办件编号和办件只填一个"})
    if problems:
        raise errors.InvalidInput("投诉内容有误", errors=problems)
    order = _staff_order(session, principal, received.order_id, received.order_number)
    agent = (
        _staff_agent(session, principal, received.agent_id, order)
        if received.agent_id is not None
        else None
    )
    if order is not None:
        town_id, district_id = int(order.town_id), int(order.district_id)
    else:
        assert agent is not None
        town_id, district_id = _town_of_agent(session, agent)
    now = ctx.now()
    phone_hash = ctx.cipher.lookup_hash(phone, context="phone") if phone else None
    id_hash = ctx.cipher.lookup_hash(id_number, context="id_number") if id_number else None
    resident_id = _account_of(session, phone_hash, id_hash)
    complaint = Complaint(
        channel=received.channel,
        received_by=principal.account_id,
        anonymous=received.anonymous,
        resident_id=resident_id,
        order_id=order.id if order is not None else None,
        agent_id=agent.id if agent else (order.agent_id if order is not None else None),
        town_id=town_id,
        district_id=district_id,
        text=text,
        upload_ids=upload_ids,
        status="open",
        submitted_at=now,
        due_at=complaint_due(session, ctx, now),
    )
    if resident_id is None and not received.anonymous:
        # Not in the mini-program: reachable only by what they gave, kept as on an account.
        complaint.contact_name = name
        if phone:
            complaint.contact_phone_enc = ctx.cipher.encrypt(phone, context="phone")
            complaint.contact_phone_hash = phone_hash
        if id_number:
            complaint.contact_id_number_enc = ctx.cipher.encrypt(id_number, context="id_number")
            complaint.contact_id_number_hash = id_hash
    session.add(complaint)
    session.flush()
    keep_for_case(session, principal, complaint.upload_ids, f"complaint:{complaint.id}")
    if phone or id_number:
        audit.record(
            session,
            principal,
            "pii.search",
            f"complaint:{complaint.id}",
            now,
            {
                "by": [k for k, v in (("phone", phone), ("id_number", id_number)) if v],
                "found": resident_id is not None,
            },
            purpose=f"登记{CHANNEL_NAMES[received.channel]}投诉",
        )
    _opened(session, ctx, complaint, now)
    return view(session, ctx, complaint, staff=True)


def _account_of(session: Session, phone_hash: str | None, id_hash: str | None) -> int | None:
    """The complainant's own mini-program account: exactly one resident who logs in, has
    that ID number in their profile and, if a phone was given, that phone confirmed by
    WeChat (a typed phone is not enough to send someone the answer). Else none."""
    if phone_hash is None and id_hash is None:
        return None
    query = select(Account.id).where(
        Account.role == "resident",
        Account.openid.is_not(None),
        Account.disabled_at.is_(None),
        Account.closed_at.is_(None),
    )
    if id_hash is not None:
        query = query.where(Account.id_number_hash == id_hash)
    if phone_hash is not None:
        query = query.where(
            Account.phone_hash == phone_hash, Account.phone_verified_at.is_not(None)
        )
    found = session.scalars(query.order_by(Account.id).limit(2)).all()
    return int(found[0]) if len(found) == 1 else None


def _staff_order(
    session: Session, principal: Principal, order_id: int | None, number: str | None
) -> Any:
    if order_id is not None:
        return order_in_scope(session, principal, order_id)
    if not number:
        return None
    found = session.scalar(
        select(Order.id).where(
            Order.number == number.strip().upper(),
            SCOPE_COLUMN[principal.role] == principal.region_id,
        )
    )
    if found is None:
        raise errors.NotFound(f"本辖区没有编号为 {number.strip()[:20]} 的办件")
    return order_in_scope(session, principal, int(found))


def _town_of_agent(session: Session, agent: Account) -> tuple[int, int]:
    region = session.get(Region, agent.region_id) if agent.region_id else None
    if region is None or region.district_id is None:
        raise errors.NotFound("没有找到该代办员")
    town_id = region.id if region.level == "town" else region.town_id
    if town_id is None:
        raise errors.NotFound("没有找到该代办员")
    return int(town_id), int(region.district_id)


def _staff_agent(session: Session, principal: Principal, agent_id: int, order: Any) -> Account:
    """An agent of the dispatcher's town (the admin's district); of the order's own town
    when an order is named too."""
    agent = session.get(Account, agent_id)
    if agent is None or agent.role != "agent":
        raise errors.NotFound("没有找到该代办员")
    town_id, district_id = _town_of_agent(session, agent)
    mine = (
        town_id == principal.region_id
        if principal.role == "dispatcher"
        else district_id == principal.region_id
    )
    if not mine or (order is not None and town_id != order.town_id):
        raise errors.NotFound("没有找到该代办员")
    return agent


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


def view(
    session: Session,
    ctx: Context,
    c: Complaint,
    *,
    staff: bool = False,
    contact_in_full: bool = False,
) -> ComplaintView:
    """What a complaint shows: to its resident, their own; to staff, also who complained
    (a contact's phone masked, or in full with `contact_in_full`: an audited read) and how
    it came in and was answered. The deadline always."""
    order = session.get(Order, c.order_id) if c.order_id else None
    agent = session.get(Account, c.agent_id) if c.agent_id else None
    resident = session.get(Account, c.resident_id) if staff and c.resident_id else None
    receiver = session.get(Account, c.received_by) if staff and c.received_by else None
    shown: dict[str, Any] = {}
    if staff:
        phone = (
            ctx.cipher.decrypt(c.contact_phone_enc, context="phone")
            if c.contact_phone_enc
            else None
        )
        id_number = (
            ctx.cipher.decrypt(c.contact_id_number_enc, context="id_number")
            if c.contact_id_number_enc
            else None
        )
        shown = {
            "resident_name": resident.name if resident else None,
            "received_by_name": receiver.name if receiver else None,
            "contact_name": c.contact_name if contact_in_full else mask_name(c.contact_name),
            "contact_phone": phone if contact_in_full else mask_phone(phone),
            "contact_id_number": mask_id_number(id_number),  # never in full
            "answered_via": c.answered_via,
            "answered_via_name": ANSWERED_VIA_NAMES[c.answered_via] if c.answered_via else None,
            "answered_note": c.answered_note,
        }
    return ComplaintView(
        id=c.id,
        status=c.status,
        channel=c.channel,
        channel_name=CHANNEL_NAMES[c.channel],
        anonymous=c.anonymous,
        in_app=c.resident_id is not None,
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
        **shown,
    )


def complaint_detail(
    session: Session, ctx: Context, principal: Principal, complaint_id: int
) -> ComplaintView:
    """To staff, a complainant without the mini-program is shown with their name and phone
    in full, to answer them: a read of personal data, so it is audited (run it in a write
    transaction)."""
    complaint = _in_scope(session, principal, complaint_id)
    if principal.role == "resident":
        return view(session, ctx, complaint)
    if complaint.contact_phone_enc or complaint.contact_name:
        audit.record(session, principal, "pii.read", f"complaint:{complaint.id}", ctx.now())
    return view(session, ctx, complaint, staff=True, contact_in_full=True)


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
    session: Session,
    ctx: Context,
    principal: Principal,
    complaint_id: int,
    text: str,
    answered_via: AnsweredVia | None = None,
    note: str | None = None,
) -> ComplaintView:
    """The town's answer. A complainant with the mini-program gets it there; for one
    without, the answer says how it reached them (answered_via), and an anonymous complaint,
    with no one to tell whether it was resolved, is closed with it."""
    complaint = _in_scope(session, principal, complaint_id)
    problems = []
    if not text.strip():
        problems.append({"field": "answer", "message": "请填写答复"})
    if complaint.resident_id is None and answered_via is None:
        problems.append(
            {
                "field": "answeredVia",
                "message": "投诉人没有使用小程序,收不到答复:请选择答复方式"
                "(电话回复、当面答复、书面答复或公示答复)",
            }
        )
    if problems:
        raise errors.InvalidInput("答复内容有误", errors=problems)
    now = ctx.now()
    closes = complaint.resident_id is None and complaint.anonymous
    won = session.execute(
        update(Complaint)
        .where(Complaint.id == complaint.id, Complaint.status == "open")
        .values(
            status="closed" if closes else "answered",
            answer=text.strip(),
            answered_at=now,
            answered_by=principal.account_id,
            answered_via=answered_via,
            answered_note=(note or "").strip() or None,
        )
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.Conflict("该投诉已经答复过了")
    session.refresh(complaint)
    if complaint.resident_id is not None:
        message = Message(
            "complaint_answered",
            "投诉已答复",
            f"您的投诉已答复:{complaint.answer}。问题解决了吗?请在小程序中告诉我们。",
            {"title": "投诉已答复", "note": complaint.answer},
            complaint.order_id,
        )
        notify(
            session,
            ctx,
            [complaint.resident_id],
            message,
            f"complaint-answer:{complaint.id}",
            now,
        )
    return view(session, ctx, complaint, staff=True)


def feedback(
    session: Session,
    ctx: Context,
    principal: Principal,
    complaint_id: int,
    resolved: bool,
    text: str | None,
) -> ComplaintView:
    """Whether the answer resolved the matter; the complaint is closed. The resident says it
    in the mini-program; for a complainant without it, the staff who asked them record it."""
    complaint = _in_scope(session, principal, complaint_id)
    if principal.role != "resident" and complaint.resident_id is not None:
        raise errors.Conflict("投诉人使用小程序,由本人在小程序中评价是否解决")
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
    return view(session, ctx, complaint, staff=principal.role != "resident")


def fire(session: Session, ctx: Context, reminder: Any, now: datetime) -> str:
    complaint = session.get(Complaint, int(reminder.basis.split(":", 1)[1]))
    if complaint is None or complaint.status != "open":
        return "stale"
    key = f"{reminder.kind}:{complaint.id}"
    due = _due_text(ctx, complaint.due_at)
    if reminder.kind == "complaint_remind":
        message = Message(
            "complaint_reminder",
            "投诉即将到期",
            f"投诉“{complaint.text[:40]}”须在{due}前答复群众。",
            {"title": "投诉即将到期", "note": complaint.text},
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
