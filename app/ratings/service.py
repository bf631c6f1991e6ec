"""Rating a finished order (好差评): once, by its resident, after hand-back; the default after
the window; who sees which ratings; the comment's text check; appeals (申诉复核)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from app import errors, scope
from app.context import Context
from app.models import Account, Order, OrderEvent, Rating, RatingAppeal, Rectification
from app.models.tables import ACCOUNTS, RATINGS, VERSIONS
from app.notifications.outbox import Message, notify
from app.orders import moves
from app.orders.records import (
    OrderRow,
    attach_uploads,
    illegal,
    order_in_scope,
    own_order,
    record_event,
    unserved_outcome_of,
    upload_problems,
)
from app.ratings import rectification
from app.ratings.outputs import (
    GRADE_NAMES,
    RATING_CHANNEL_NAMES,
    AppealView,
    MyRating,
    RatingView,
)
from app.security.tokens import Principal
from app.uploads.service import keep_for_case
from app.wechat import local_text_verdict

# Tags a resident may pick, by grade (a bad rating's tags say what went wrong).
GOOD_TAGS = ("态度好", "办事快", "材料一次说清", "上门服务", "热情耐心", "全程代办省心")
MIDDLE_TAGS = ("办事较快", "态度一般", "等待较久", "材料说明不够清楚")
BAD_TAGS = ("材料反复要", "超时", "态度差", "推诿扯皮", "不熟悉业务", "乱收费", "办理结果有误")
TAGS = {5: GOOD_TAGS, 4: GOOD_TAGS, 3: MIDDLE_TAGS, 2: BAD_TAGS, 1: BAD_TAGS}
MAX_PAGE = 50

AlreadyRated = errors.error("already_rated", 409, "该办件已经评价过了")
RatingWindowOver = errors.error("rating_window_over", 409, "已超过评价期限")
AppealPending = errors.error("appeal_pending", 409, "该评价已有待复核的申诉")


@dataclass(frozen=True)
class RatingInput:
    grade: int
    tags: list[str] = field(default_factory=list)
    comment: str | None = None


def comment_status(suggest: str | None) -> str:
    """WeChat's msgSecCheck verdict (or dev's word list) as what staff may see."""
    return {"pass": "passed", "risky": "blocked"}.get(suggest or "", "pending")


async def check_comment(ctx: Context, openid: str | None, comment: str | None) -> str:
    """Outside any transaction (a network call in live mode); unreachable means the comment
    waits hidden until the ratings job checks it again."""
    if not comment:
        return "none"
    try:
        return comment_status(await ctx.wechat.check_text(openid or "", comment))
    except (errors.WeChatUnavailable, errors.WeChatFailed):
        return "pending"


async def recheck_comments(ctx: Context, limit: int = 50) -> int:
    """Comments whose check could not be made (WeChat unreachable): check them again, each
    call outside any transaction. Returns how many got a verdict."""

    def pending(session: Session) -> list[Any]:
        return list(
            session.execute(
                select(RATINGS.c.id, RATINGS.c.comment, ACCOUNTS.c.openid)
                .join(ACCOUNTS, ACCOUNTS.c.id == RATINGS.c.resident_id)
                .where(RATINGS.c.comment_status == "pending")
                .order_by(RATINGS.c.id)
                .limit(limit)
            )
        )

    checked = 0
    for row in await ctx.db.run_read(pending):
        verdict = await check_comment(ctx, row.openid, row.comment)
        if verdict == "pending":
            continue

        def record(session: Session, rating_id: int = row.id, status: str = verdict) -> None:
            session.execute(
                update(Rating)
                .where(Rating.id == rating_id, Rating.comment_status == "pending")
                .values(comment_status=status)
            )

        await ctx.db.run_write(record)
        checked += 1
    return checked


def rate(
    session: Session,
    ctx: Context,
    principal: Principal,
    order_id: int,
    data: RatingInput,
    checked: str,
) -> MyRating:
    """The resident rates their order once in the mini-program: after hand-back, which
    archives it; or, within the rating window after it ended, a refusal (不予受理) or a
    termination (终止办理), which stays as it is (好差评全覆盖: a refusal is service too)."""
    order = order_in_scope(session, principal, order_id)
    if principal.role != "resident":
        raise errors.Forbidden("工作人员不能代群众评价")
    record(session, ctx, principal, order, data, checked, "app")
    return my_rating(session, principal, order_id)


def record(
    session: Session,
    ctx: Context,
    actor: Principal,
    order: OrderRow,
    data: RatingInput,
    checked: str,
    channel: str,
    card_ids: tuple[int, ...] = (),
) -> int:
    """One rating of `order` through `channel`: app and web by the resident themselves
    (`actor` is the resident), paper by the staff member who types in the card the resident
    signed (`actor`; its photo in `card_ids` is required and attached to the order)."""
    if order.status == "closed":
        raise AlreadyRated()
    outcome = "done"
    if order.status != "delivered":
        outcome = unserved_outcome(session, ctx, order)  # 409 when it cannot be rated
    problems = []
    if data.grade not in GRADE_NAMES:
        problems.append({"field": "grade", "message": "请选择1到5分"})
    else:
        wrong = [t for t in data.tags if t not in TAGS[data.grade]]
        problems += [{"field": "tags", "message": f"“{t}”不是这一评价可选的标签"} for t in wrong]
    if channel == "paper":
        if not card_ids:
            problems.append({"field": "cardUploadIds", "message": "请上传群众签字的评价卡照片"})
        problems += upload_problems(session, actor, {"cardUploadIds": list(card_ids)})
    if problems:
        raise errors.InvalidInput("评价内容有误", errors=problems)
    note = f"评价:{GRADE_NAMES[data.grade]}{CHANNEL_NOTES.get(channel, '')}"
    if outcome == "done" and channel == "paper":
        moves.recorded_for_resident(session, ctx, actor, order, "rate", note)
    elif outcome == "done":
        moves.act(session, ctx, actor, order.id, "rate", moves.ActionInput(reason=note))
    else:  # the order has ended: the rating is an event on it, not a move
        record_event(session, order.id, actor, ctx.now(), "rate", order.status, order.status, note)
    if card_ids:
        attach_uploads(session, actor, order.id, list(card_ids))
    rating_id = _insert(
        session,
        ctx,
        order,
        data,
        checked,
        outcome=outcome,
        channel=channel,
        recorded_by=actor.account_id if channel == "paper" else None,
        card_ids=list(card_ids) or None,
    )
    if data.grade <= 2:
        rectification.open_case(session, ctx, rating_id, order)
    if channel == "paper":
        _tell_resident_of_card(session, ctx, order, data.grade, rating_id)
    return rating_id


# What the timeline says after the grade, by channel (the mini-program's says nothing more).
CHANNEL_NOTES = {"web": "(通过进度查询页)", "paper": "(纸质评价卡,工作人员登记)"}


def record_card(
    session: Session,
    ctx: Context,
    principal: Principal,
    order_id: int,
    data: RatingInput,
    card_ids: tuple[int, ...],
) -> RatingView:
    """A paper rating card (评价卡) the resident filled in and signed, typed in by the order's
    agent or a dispatcher of its town, with a photo of the card. Shown apart in the figures,
    and the resident is told it was recorded (so no one rates themselves unseen)."""
    if principal.role not in ("agent", "dispatcher"):
        raise errors.Forbidden()
    order = (
        own_order(session, principal, order_id)
        if principal.role == "agent"
        else order_in_scope(session, principal, order_id)
    )
    checked = local_comment_check(data.comment)
    rating_id = record(session, ctx, principal, order, data, checked, "paper", card_ids)
    rows = _staff_rows(session, [RATINGS.c.id == rating_id], 1, None)
    return _view(rows[0], for_agent=False)


def _tell_resident_of_card(
    session: Session, ctx: Context, order: OrderRow, grade: int, rating_id: int
) -> None:
    """The resident hears of a card recorded in their name, in the mini-program if they use
    it: who to call if it is not what they wrote."""
    number = order.number
    message = Message(
        "rating_card",
        "纸质评价已登记",
        f"您对办件{number}的纸质评价卡已登记为“{GRADE_NAMES[grade]}”。"
        "如与您填写的不一致,请联系便民服务站。",
        {"title": "纸质评价已登记", "number": number, "note": GRADE_NAMES[grade]},
        order.id,
    )
    notify(session, ctx, [order.resident_id], message, f"rating_card:{rating_id}", ctx.now())


def local_comment_check(comment: str | None) -> str:
    """A comment written away from the mini-program (a paper card, the progress page) has no
    WeChat identity to check it with: the service's own word list decides."""
    if not comment:
        return "none"
    return comment_status(local_text_verdict(comment))


def _insert(
    session: Session,
    ctx: Context,
    order: OrderRow,
    data: RatingInput,
    checked: str,
    *,
    outcome: str = "done",
    channel: str = "app",
    recorded_by: int | None = None,
    card_ids: list[int] | None = None,
) -> int:
    return int(
        session.execute(
            insert(RATINGS)
            .values(
                order_id=order.id,
                resident_id=order.resident_id,
                agent_id=order.agent_id,
                village_id=order.village_id,
                town_id=order.town_id,
                district_id=order.district_id,
                item_id=order.item_id,
                grade=data.grade,
                tags=list(dict.fromkeys(data.tags)),
                comment=(data.comment or "").strip() or None,
                comment_status=checked if data.comment else "none",
                is_default=channel == "default",
                rated_at=ctx.now(),
                excluded=False,
                order_outcome=outcome,
                channel=channel,
                recorded_by=recorded_by,
                card_upload_ids=card_ids,
            )
            .returning(RATINGS.c.id)
        ).scalar_one()
    )


def unserved_outcome(session: Session, ctx: Context, order: OrderRow) -> str:
    """How an order that was not carried through ended, if it may be rated: refused (不予
    受理) or terminated (终止办理, not the resident's own withdrawal), within the rating window
    after it ended, and not yet rated. Else 409: already rated, or why not."""
    if session.scalar(select(RATINGS.c.id).where(RATINGS.c.order_id == order.id)) is not None:
        raise AlreadyRated()
    window = timedelta(days=ctx.settings.ratings.window_days)
    ended = order.ended_at
    ended_by = _ended_by(session, order.id) if order.status == "cancelled" else None
    outcome = unserved_outcome_of(order.status, ended_by)
    if outcome is None:  # under way, or withdrawn by the resident: 409 with its status
        raise illegal(order.status, "rate")
    if ended is None or ctx.now() >= ended + window:
        raise RatingWindowOver()
    return outcome


def _ended_by(session: Session, order_id: int) -> str | None:
    """The action that ended a cancelled order: cancel, expire or terminate."""
    return session.scalar(
        select(OrderEvent.action)
        .where(OrderEvent.order_id == order_id, OrderEvent.to_status == "cancelled")
        .order_by(OrderEvent.id.desc())
        .limit(1)
    )


def record_default(session: Session, ctx: Context, order: OrderRow) -> bool:
    """The window passed without a rating: 基本满意 (a setting), marked as default."""
    days = ctx.settings.ratings.window_days
    grade = ctx.settings.ratings.default_grade
    note = f"{days}天内未评价,默认{GRADE_NAMES[grade]}"
    if not moves.system_move(session, ctx, order, "close", note):
        return False
    _insert(session, ctx, order, RatingInput(grade), "none", channel="default")
    return True


# --- who sees what ---------------------------------------------------------------------


RECORDERS = ACCOUNTS.alias("recorders")


def _staff_rows(session: Session, where: list[Any], limit: int, cursor: int | None) -> list[Any]:
    query = (
        select(
            RATINGS,
            VERSIONS.c.name.label("item_name"),
            Order.number,
            ACCOUNTS.c.name.label("agent_name"),
            RECORDERS.c.name.label("recorded_by_name"),
            Rectification.id.label("case_id"),
            Rectification.status.label("case_status"),
        )
        .join(Order, Order.id == RATINGS.c.order_id)
        .join(VERSIONS, VERSIONS.c.id == Order.item_version_id)
        .outerjoin(ACCOUNTS, ACCOUNTS.c.id == RATINGS.c.agent_id)
        .outerjoin(RECORDERS, RECORDERS.c.id == RATINGS.c.recorded_by)
        .outerjoin(Rectification, Rectification.rating_id == RATINGS.c.id)
        .where(*where)
    )
    if cursor is not None:
        query = query.where(RATINGS.c.id < cursor)
    return list(session.execute(query.order_by(RATINGS.c.id.desc()).limit(limit)))


def _view(row: Any, *, for_agent: bool) -> RatingView:
    return RatingView(
        id=row.id,
        grade=row.grade,
        grade_name=GRADE_NAMES[row.grade],
        tags=list(row.tags),
        comment=row.comment if row.comment_status == "passed" else None,
        is_default=row.is_default,
        excluded=row.excluded,
        rated_at=row.rated_at,
        item_name=row.item_name,
        channel=row.channel,
        channel_name=RATING_CHANNEL_NAMES[row.channel],
        recorded_by_name=row.recorded_by_name,
        card_upload_ids=None if for_agent else row.card_upload_ids,
        agent_id=None if for_agent else row.agent_id,
        agent_name=None if for_agent else row.agent_name,
        order_id=None if for_agent else row.order_id,
        order_number=None if for_agent else row.number,
        case_id=None if for_agent else row.case_id,
        case_status=row.case_status,
    )


def staff_ratings(
    session: Session,
    principal: Principal,
    *,
    grade: int | None = None,
    agent_id: int | None = None,
    cursor: int | None = None,
    limit: int = 20,
) -> list[RatingView]:
    """Agents: their own, without the order or who rated; dispatchers: their town's;
    admins: their district's."""
    limit = max(1, min(limit, MAX_PAGE))
    where: list[Any] = []
    if principal.role == "agent":
        where.append(RATINGS.c.agent_id == principal.account_id)
    elif principal.role == "dispatcher":
        where.append(RATINGS.c.town_id == principal.region_id)
    else:
        where.append(RATINGS.c.district_id == principal.region_id)
    if grade is not None:
        where.append(RATINGS.c.grade == grade)
    if agent_id is not None:
        where.append(RATINGS.c.agent_id == agent_id)
    rows = _staff_rows(session, where, limit, cursor)
    return [_view(r, for_agent=principal.role == "agent") for r in rows]


def my_rating(session: Session, principal: Principal, order_id: int) -> MyRating:
    order_in_scope(session, principal, order_id)
    row = session.execute(
        select(RATINGS, Rectification)
        .outerjoin(Rectification, Rectification.rating_id == RATINGS.c.id)
        .where(RATINGS.c.order_id == order_id)
    ).one_or_none()
    if row is None:
        raise errors.NotFound("该办件还没有评价")
    case = row.Rectification
    return MyRating(
        order_id=order_id,
        grade=row.grade,
        grade_name=GRADE_NAMES[row.grade],
        tags=list(row.tags),
        comment=row.comment,
        is_default=row.is_default,
        rated_at=row.rated_at,
        channel=row.channel,
        channel_name=RATING_CHANNEL_NAMES[row.channel],
        case_status=case.status if case else None,
        case_answer=case.answer if case else None,
        follow_up=case.follow_up if case else None,
    )


def rating_in_scope(session: Session, principal: Principal, rating_id: int) -> Rating:
    rating = session.get(Rating, rating_id)
    if rating is None or not scope.in_scope(principal, rating, scope.RATING):
        raise errors.NotFound("没有找到该评价")
    return rating


# --- appeals (申诉复核) --------------------------------------------------------------------


def appeal(
    session: Session,
    ctx: Context,
    principal: Principal,
    rating_id: int,
    reason: str,
    evidence: str,
    upload_ids: list[int],
) -> AppealView:
    """A dispatcher says a rating is mistaken or malicious, with evidence; an admin decides."""
    rating = rating_in_scope(session, principal, rating_id)
    problems = upload_problems(session, principal, {"evidenceUploadIds": upload_ids})
    if not evidence.strip():
        problems.append({"field": "evidence", "message": "请写明申诉理由和证据"})
    if problems:
        raise errors.InvalidInput(errors=problems)
    pending = session.scalar(
        select(RatingAppeal.id).where(
            RatingAppeal.rating_id == rating.id, RatingAppeal.status == "pending"
        )
    )
    if pending is not None:
        raise AppealPending()
    now = ctx.now()
    row = RatingAppeal(
        rating_id=rating.id,
        district_id=rating.district_id,
        appealed_by=principal.account_id,
        appealed_at=now,
        reason=reason,
        evidence=evidence.strip(),
        evidence_upload_ids=upload_ids,
        status="pending",
    )
    session.add(row)
    session.flush()
    keep_for_case(session, principal, upload_ids, f"appeal:{row.id}")
    admins = session.scalars(
        select(Account.id).where(
            Account.role == "admin",
            Account.region_id == rating.district_id,
            Account.disabled_at.is_(None),
        )
    ).all()
    message = Message(
        "appeal",
        "差评申诉待复核",
        f"有一条{GRADE_NAMES[rating.grade]}评价被申诉为{REASONS[reason]},请复核。",
        {"title": "差评申诉待复核", "note": REASONS[reason]},
        rating.order_id,
    )
    notify(session, ctx, list(admins), message, f"appeal:{row.id}", now)
    return appeal_view(session, row)


REASONS = {"mistaken": "误评", "malicious": "恶意差评"}


def decide(
    session: Session,
    ctx: Context,
    principal: Principal,
    appeal_id: int,
    upheld: bool,
    note: str,
) -> AppealView:
    """Upheld: the rating leaves the figures (it stays, marked); dismissed: it counts."""
    row = session.get(RatingAppeal, appeal_id)
    if row is None or row.district_id != principal.region_id:
        raise errors.NotFound("没有找到该申诉")
    if not note.strip():
        raise errors.InvalidInput(errors=[{"field": "note", "message": "请写明复核意见"}])
    won = session.execute(
        update(RatingAppeal)
        .where(RatingAppeal.id == appeal_id, RatingAppeal.status == "pending")
        .values(
            status="upheld" if upheld else "dismissed",
            decided_by=principal.account_id,
            decided_at=ctx.now(),
            decision_note=note.strip(),
        )
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.Conflict("该申诉已经复核过了")
    if upheld:
        session.execute(update(Rating).where(Rating.id == row.rating_id).values(excluded=True))
    session.refresh(row)
    return appeal_view(session, row)


def appeal_view(session: Session, row: RatingAppeal) -> AppealView:
    by = session.get(Account, row.appealed_by)
    return AppealView(
        id=row.id,
        rating_id=row.rating_id,
        status=row.status,
        reason=row.reason,
        evidence=row.evidence,
        evidence_upload_ids=list(row.evidence_upload_ids),
        appealed_at=row.appealed_at,
        appealed_by=by.name if by else None,
        decided_at=row.decided_at,
        decision_note=row.decision_note,
    )


def appeals(session: Session, principal: Principal, status: str | None) -> list[AppealView]:
    if principal.role == "dispatcher":  # the appeals about the town's ratings
        query = (
            select(RatingAppeal)
            .join(Rating, Rating.id == RatingAppeal.rating_id)
            .where(Rating.town_id == principal.region_id)
        )
    else:
        query = select(RatingAppeal).where(RatingAppeal.district_id == principal.region_id)
    if status:
        query = query.where(RatingAppeal.status == status)
    rows = session.scalars(query.order_by(RatingAppeal.id.desc()).limit(MAX_PAGE)).all()
    return [appeal_view(session, r) for r in rows]
