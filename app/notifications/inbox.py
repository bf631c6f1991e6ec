"""The in-app inbox (every notification lands here) and one-time subscription credits."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models import SubscriptionCredit
from app.models.tables import CREDITS
from app.models.tables import NOTIFICATIONS as N
from app.security.tokens import Principal

MAX_PAGE = 50
MAX_CREDITS = 50  # a guard against a client reporting the same tap over and over


class MessageView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    kind: str
    title: str
    body: str
    order_id: int | None
    created_at: datetime
    read: bool


class Inbox(msgspec.Struct, rename="camel", kw_only=True):
    items: list[MessageView]
    unread: int
    next_cursor: int | None


class Credits(msgspec.Struct, rename="camel", kw_only=True):
    credits: dict[str, int]  # template id -> messages that may still be sent


def inbox(
    session: Session, principal: Principal, *, unread_only: bool, cursor: int | None, limit: int
) -> Inbox:
    """Newest first, keyset on id; `unread` counts all unread, not just this page."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(N).where(N.c.recipient_id == principal.account_id)
    if unread_only:
        query = query.where(N.c.read_at.is_(None))
    if cursor is not None:
        query = query.where(N.c.id < cursor)
    rows = session.execute(query.order_by(N.c.id.desc()).limit(limit + 1)).all()
    unread = session.scalar(
        select(func.count()).where(N.c.recipient_id == principal.account_id, N.c.read_at.is_(None))
    )
    return Inbox(
        items=[
            MessageView(
                id=r.id,
                kind=r.kind,
                title=r.title,
                body=r.body,
                order_id=r.order_id,
                created_at=r.created_at,
                read=r.read_at is not None,
            )
            for r in rows[:limit]
        ],
        unread=int(unread or 0),
        next_cursor=rows[limit - 1].id if len(rows) > limit else None,
    )


def mark_read(session: Session, ctx: Context, principal: Principal, ids: list[int] | None) -> int:
    """Mark the given messages (or all) read; another person's ids are simply not found."""
    statement = update(N).where(N.c.recipient_id == principal.account_id, N.c.read_at.is_(None))
    if ids is not None:
        statement = statement.where(N.c.id.in_(ids))
    result = session.execute(statement.values(read_at=ctx.now()))
    return int(result.rowcount)  # type: ignore[attr-defined]


def credits(session: Session, principal: Principal) -> Credits:
    rows = session.execute(
        select(CREDITS.c.template_id, CREDITS.c.credits).where(
            CREDITS.c.account_id == principal.account_id
        )
    ).all()
    return Credits(credits={t: c for t, c in rows})


def add_subscriptions(
    session: Session, ctx: Context, principal: Principal, template_ids: list[str]
) -> Credits:
    """The person tapped "allow" (wx.requestSubscribeMessage): one message per template id
    reported may be sent to them. Only templates this service uses are counted."""
    known = {t.id for t in ctx.templates().values()}
    unknown = [t for t in template_ids if t not in known]
    if unknown:
        raise errors.InvalidInput(
            "有不认识的订阅消息模板",
            errors=[{"field": "templateIds", "message": f"不认识的模板 {t}"} for t in unknown],
        )
    now = ctx.now()
    # in the order the delivery job locks credits in (app/notifications/delivery.py)
    for template_id in sorted(template_ids):
        changed = session.execute(
            update(CREDITS)
            .where(
                CREDITS.c.account_id == principal.account_id,
                CREDITS.c.template_id == template_id,
            )
            .values(
                credits=case(
                    (CREDITS.c.credits >= MAX_CREDITS, MAX_CREDITS),
                    else_=CREDITS.c.credits + 1,
                ),
                updated_at=now,
            )
        )
        if changed.rowcount == 0:  # type: ignore[attr-defined]
            session.add(
                SubscriptionCredit(
                    account_id=principal.account_id,
                    template_id=template_id,
                    credits=1,
                    updated_at=now,
                )
            )
            session.flush()
    return credits(session, principal)
