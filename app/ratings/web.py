"""Rating on the public progress page (进度查询页): a resident without WeChat rates the order
the 受理单's QR code names, after the same check of the last four digits that shows the page.

The check is not asked again for the rating: a successful check puts a ticket in the page,
the keyed hash (DAIBAN_SECURITY_PII_HASH_KEY) of the link's token, the order and an expiry
TICKET_TTL ahead, so only a page that passed the check can rate, and only for a while. The
page has no script: the resident first picks a grade (five large buttons), then sees the
tags of that grade and a box for a comment, and confirms. The rating is the resident's own
(channel web), made as in the mini-program: once, after hand-back or within the window after
a refusal or a termination. Its comment is checked against the service's own word list
(there is no WeChat identity to ask WeChat with).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models.tables import ORDERS, RATINGS
from app.orders import progress_page
from app.orders.records import ORDER_BY_ID
from app.ratings.outputs import GRADE_NAMES, RATING_CHANNEL_NAMES
from app.ratings.service import (
    TAGS,
    RatingInput,
    local_comment_check,
    record,
    unserved_outcome,
)
from app.security.tokens import Principal

TICKET_TTL = timedelta(minutes=30)
HASH_CONTEXT = "progress_page_rating"

TicketExpired = errors.error("rating_ticket_expired", 403, "页面已过期,请重新输入后四位")


@dataclass(frozen=True)
class Offer:
    """The order may be rated: the ticket for the form, and the grades to pick from."""

    ticket: str
    grades: list[tuple[int, str]]


@dataclass(frozen=True)
class Rated:
    """The order has its rating: what it was and how it came."""

    grade_name: str
    channel_name: str


def ticket(ctx: Context, token: str, order_id: int, now: datetime) -> str:
    expires = int((now + TICKET_TTL).timestamp())
    return f"{expires}.{_mac(ctx, token, order_id, expires)}"


def _mac(ctx: Context, token: str, order_id: int, expires: int) -> str:
    return ctx.cipher.lookup_hash(f"{token}:{order_id}:{expires}", context=HASH_CONTEXT)[:32]


def ticket_valid(ctx: Context, token: str, order_id: int, given: str, now: datetime) -> bool:
    expires_text, _, mac = given.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    right = hmac.compare_digest(mac.encode(), _mac(ctx, token, order_id, expires).encode())
    return right and now.timestamp() < expires


def offer(session: Session, ctx: Context, token: str, order_id: int) -> Offer | Rated | None:
    """What the page offers under the progress: the rating made, a form to rate, or nothing
    (the order is under way, withdrawn, or its window has passed)."""
    made = session.execute(
        select(RATINGS.c.grade, RATINGS.c.channel).where(RATINGS.c.order_id == order_id)
    ).one_or_none()
    if made is not None:
        return Rated(GRADE_NAMES[made.grade], RATING_CHANNEL_NAMES[made.channel])
    order = session.execute(ORDER_BY_ID.statement, {"id": order_id}).one()
    if order.status != "delivered":
        try:
            unserved_outcome(session, ctx, order)
        except errors.DomainError:
            return None
    grades = [(g, GRADE_NAMES[g]) for g in sorted(GRADE_NAMES, reverse=True)]
    return Offer(ticket(ctx, token, order_id, ctx.now()), grades)


def tags_for(grade: int) -> tuple[str, ...]:
    return TAGS.get(grade, ())


def _ticketed(session: Session, ctx: Context, token: str, given_ticket: str) -> int:
    """The order of the page a ticket was given on: NotFound for a link that names no order,
    403 rating_ticket_expired for a ticket that is not this page's or has expired."""
    order_id = progress_page.order_id_of(session, token)
    if order_id is None:
        raise errors.NotFound("没有找到该办件")
    if not ticket_valid(ctx, token, order_id, given_ticket, ctx.now()):
        raise TicketExpired()
    return order_id


def rate(session: Session, ctx: Context, token: str, given_ticket: str, data: RatingInput) -> int:
    """The rating the page's form sent: the order's id once it is written. As `_ticketed`
    for the link and the ticket; else as any rating (already rated, window over, wrong
    tags)."""
    order_id = _ticketed(session, ctx, token, given_ticket)
    order = session.execute(ORDER_BY_ID.statement, {"id": order_id}).one()
    resident = Principal(account_id=order.resident_id, role="resident", region_id=order.village_id)
    checked = local_comment_check(data.comment)
    record(session, ctx, resident, order, data, checked, "web")
    return order_id


def checked_page(
    session: Session, ctx: Context, token: str, given_ticket: str
) -> tuple[progress_page.ProgressView, Offer | Rated | None]:
    """The page behind a ticket as it is now (not counted as a view), and what it offers
    under the progress: for the rating form's steps, and after the rating. As `_ticketed`
    for the link and the ticket."""
    order_id = _ticketed(session, ctx, token, given_ticket)
    order = session.execute(
        select(ORDERS.c.resident_id, ORDERS.c.village_id).where(ORDERS.c.id == order_id)
    ).one()
    view = progress_page.view(session, ctx, order_id, order.resident_id, order.village_id)
    return view, offer(session, ctx, token, order_id)
