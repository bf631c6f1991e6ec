"""The public progress page (进度查询) behind the 受理单's QR code: its token, the check of
the last four digits, the lock-out after wrong digits, and what the page shows.

The QR code holds `<public URL>/p/<token>`. The token is derived, never stored: a random
seed (`secrets.token_urlsafe(16)`) is made with the order's first slip, and the token is
the keyed hash of that seed (the personal-data hash key, DAIBAN_SECURITY_PII_HASH_KEY,
which never changes for a database and is never in it), so every slip printed again
carries the same link and a copy of the database alone gives no link. The database keeps
the seed and the token's sha256, by which a request finds its order.

The page shows nothing until the last four digits of the ID number or of the phone on the
order's resident are given (compared in constant time with the decrypted values). Then it
shows only the item, the status and the timeline in plain Chinese (no one's name, notes only
where they are meant for the resident), the due date, and whom to call: the agent's name
and work phone (the station's published duty number, 挂牌上岗) and the station. A resident
reading their own order is not staff reading personal data: a view is counted on the order
(`progress_page_views`), not written to the audit log.

Wrong digits are counted on the order: every 5th wrong answer in a row locks the page for 15
minutes, and 20 wrong answers within 24 hours of the first lock it until those 24 hours
have passed; the right digits clear the count. The edge also counts wrong answers per
client address (console/progress_page.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models.tables import ACCOUNTS, ORDERS
from app.notifications.messages import OUTCOME_NAMES, full_day
from app.orders import notices, queries
from app.orders.states import STATUS_NAMES
from app.security.tokens import Principal
from app.settings import Settings
from app.workdays import last_day

PATH = "/p"
HASH_CONTEXT = "progress_page"  # the keyed hash that makes a token from its seed
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
DIGITS = re.compile(r"^[0-9]{3}[0-9X]$")
# Wrong digits: every STRIKES-th in a row locks the page for LOCK; DAY_STRIKES within DAY of
# the first lock it until DAY has passed.
STRIKES = 5
LOCK = timedelta(minutes=15)
DAY_STRIKES = 20
DAY = timedelta(hours=24)

# What the page says of each status, in a sentence a resident reads at a glance.
STATUS_HINTS = {
    "submitted": "已收到您的委托,正在等待派给代办员。",
    "assigned": "已派给代办员,正在等待接单。",
    "reviewing": "代办员正在审核您的材料。",
    "supplement_required": "需要补正材料,请联系代办员。",
    "accepted": "正在办理。",
    "on_hold": "暂停办理(中止),恢复后继续计算办理时限。",
    "completed": "已办结,代办员将把结果交回给您。",
    "delivered": "办理结果已交回给您。",
    "closed": "已办完并归档。",
    "rejected": "不予受理。",
    "cancelled": "已取消办理。",
}
# The timeline lines the page shows: what happened to the request, not the staff's own
# hand-offs (pool, decline, re-assignment, claim) or the green channel's reasons (age,
# illness). A transfer (转户籍地办理) is shown: the request went to another station, as the
# resident is told; its note, which may hold the agent's reason, is not. NOTED: the lines
# whose note is written for the resident (their messages say the same): a reason to
# supplement, refuse, hold or end, the result, a delay, a progress step.
SHOWN = frozenset(
    {
        "submit",
        "assign",
        "take",
        "accept",
        "request_supplement",
        "supplement",
        "reject",
        "hold",
        "resume",
        "complete",
        "deliver",
        "confirm_receipt",
        "rate",
        "close",
        "cancel",
        "expire",
        "terminate",
        "explain_delay",
        "progress",
        "recompute_due",
        "dispute",
        "sign_entrustment",
        "transfer",
    }
)
NOTED = frozenset(
    {
        "request_supplement",
        "reject",
        "hold",
        "complete",
        "terminate",
        "expire",
        "explain_delay",
        "progress",
    }
)
SEED_OF_ORDER = select(ORDERS.c.progress_page_seed)
ORDER_BY_HASH = select(
    ORDERS.c.id,
    ORDERS.c.resident_id,
    ORDERS.c.village_id,
    ORDERS.c.progress_page_failures,
    ORDERS.c.progress_page_failed_at,
    ORDERS.c.progress_page_locked_until,
)


def token_of(ctx: Context, seed: str) -> str:
    """The link's token: the keyed hash of the seed, 24 bytes as 32 URL-safe characters."""
    digest = bytes.fromhex(ctx.cipher.lookup_hash(seed, context=HASH_CONTEXT))
    return base64.urlsafe_b64encode(digest[:24]).decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def page_url(settings: Settings, token: str) -> str:
    """What the QR code holds and the slip prints under it."""
    return f"{settings.storage.public_url.rstrip('/')}{PATH}/{token}"


def ensure_token(session: Session, ctx: Context, order_id: int) -> str:
    """The order's token, its seed made now if it has none (the first slip). Two first slips
    at once: a compare-and-set keeps the first seed, and the other reads it back."""
    seed = session.execute(SEED_OF_ORDER.where(ORDERS.c.id == order_id)).scalar_one()
    if seed:
        return token_of(ctx, seed)
    seed = secrets.token_urlsafe(16)
    token = token_of(ctx, seed)
    made = session.execute(
        update(ORDERS)
        .where(ORDERS.c.id == order_id, ORDERS.c.progress_page_seed.is_(None))
        .values(progress_page_seed=seed, progress_page_hash=token_hash(token))
    )
    if made.rowcount == 1:  # type: ignore[attr-defined]
        return token
    seed = session.execute(SEED_OF_ORDER.where(ORDERS.c.id == order_id)).scalar_one()
    return token_of(ctx, seed)


def _order_of(session: Session, token: str) -> Any | None:
    if not TOKEN.match(token):
        return None
    found = ORDER_BY_HASH.where(ORDERS.c.progress_page_hash == token_hash(token))
    return session.execute(found).one_or_none()


def order_id_of(session: Session, token: str) -> int | None:
    """The order the link names, or None."""
    found = _order_of(session, token)
    return int(found.id) if found is not None else None


def known(session: Session, token: str) -> bool:
    """Whether the link names an order (the page with the digits' form), nothing counted."""
    return _order_of(session, token) is not None


class PageLine(msgspec.Struct, kw_only=True):
    at: datetime
    action_name: str
    status_name: str
    note: str | None


class ProgressView(msgspec.Struct, kw_only=True):
    """Everything the page shows, and nothing else."""

    number: str
    item_name: str
    status_name: str
    status_hint: str
    overdue: bool
    due_day: str | None  # 2026年11月30日: the last working day (承诺时限)
    due_provisional: bool
    remaining_working_days: int | None
    outcome_name: str | None
    timeline: list[PageLine]
    contact_name: str | None
    contact_phone: str | None
    station_name: str | None


@dataclass(frozen=True)
class Shown:
    order_id: int
    view: ProgressView


@dataclass(frozen=True)
class Wrong:
    left: int  # wrong answers left before the page locks


@dataclass(frozen=True)
class Locked:
    until: datetime


Attempt = Shown | Wrong | Locked


# Full-width digits (０ is U+FF10) and any x as the check character X.
_DIGIT_FORMS = str.maketrans(
    {chr(0xFF10 + d): str(d) for d in range(10)} | {"x": "X", "ｘ": "X", "Ｘ": "X"}
)


def normalize_digits(value: str) -> str | None:
    """The four characters typed (full-width digits and a small x taken as they are meant),
    or None when they cannot be the end of an ID number or a phone."""
    digits = value.strip().translate(_DIGIT_FORMS)
    return digits if DIGITS.match(digits) else None


def _matches(ctx: Context, resident_id: int, digits: str, session: Session) -> bool:
    person = session.execute(
        select(ACCOUNTS.c.id_number_enc, ACCOUNTS.c.phone_enc).where(ACCOUNTS.c.id == resident_id)
    ).one_or_none()
    id_number = phone = ""
    if person is not None and person.id_number_enc:
        id_number = ctx.cipher.decrypt(person.id_number_enc, context="id_number")
    if person is not None and person.phone_enc:
        phone = ctx.cipher.decrypt(person.phone_enc, context="phone")
    # Both compared every time, in constant time; a missing value is never matched.
    given = digits.encode()
    by_id = hmac.compare_digest(given, (id_number[-4:].upper() or "none").encode())
    by_phone = hmac.compare_digest(given, (phone[-4:] or "none").encode())
    return by_id | by_phone


def attempt(session: Session, ctx: Context, token: str, digits: str) -> Attempt:
    """Check the digits typed on the page: the page's content, or how many tries are left,
    or until when it is locked. NotFound for a link that names no order. A write: wrong
    answers and views are counted (return, never raise, so that the count is kept)."""
    found = _order_of(session, token)
    if found is None:
        raise errors.NotFound("没有找到该办件")
    ctx.db.lock_row(session, ORDERS.c.id, found.id)  # PostgreSQL: one attempt at a time
    order = _order_of(session, token)  # the counts as they are now that the row is ours
    assert order is not None, "a link's order is never removed"
    now = ctx.now()
    if order.progress_page_locked_until is not None and now < order.progress_page_locked_until:
        return Locked(order.progress_page_locked_until)
    typed = normalize_digits(digits)
    where = ORDERS.c.id == order.id
    if typed is not None and _matches(ctx, order.resident_id, typed, session):
        session.execute(
            update(ORDERS)
            .where(where)
            .values(
                progress_page_views=ORDERS.c.progress_page_views + 1,
                progress_page_failures=0,
                progress_page_failed_at=None,
                progress_page_locked_until=None,
            )
        )
        return Shown(order.id, view(session, ctx, order.id, order.resident_id, order.village_id))
    first = order.progress_page_failed_at
    failures = order.progress_page_failures or 0
    if first is None or now >= first + DAY:
        first, failures = now, 0
    failures += 1
    locked = None
    if failures >= DAY_STRIKES:
        locked = first + DAY
    elif failures % STRIKES == 0:
        locked = now + LOCK
    session.execute(
        update(ORDERS)
        .where(where)
        .values(
            progress_page_failures=failures,
            progress_page_failed_at=first,
            progress_page_locked_until=locked,
        )
    )
    if locked is not None:
        return Locked(locked)
    return Wrong(STRIKES - failures % STRIKES)


def view(
    session: Session, ctx: Context, order_id: int, resident_id: int, village_id: int
) -> ProgressView:
    """The page's content, from the order's detail as its resident sees it, less every name
    but the agent's and every note not written for the resident."""
    resident = Principal(account_id=resident_id, role="resident", region_id=village_id)
    detail = queries.order_detail(session, ctx, resident, order_id, scoped=False)
    station = notices.village_name(session, ctx, village_id)
    due_day = None
    if detail.due_at is not None and detail.status in ("accepted", "on_hold"):
        due_day = full_day(last_day(detail.due_at, ctx.settings.zone))
    hint = STATUS_HINTS[detail.status]
    if detail.status == "accepted" and due_day:
        hint = f"正在办理,承诺{due_day}前办结。"
    contact = detail.agent
    slip = detail.acceptance_slip
    return ProgressView(
        number=detail.number,
        item_name=detail.item_name,
        status_name=detail.status_name,
        status_hint=hint,
        overdue=detail.overdue,
        due_day=due_day,
        due_provisional=detail.due_provisional,
        remaining_working_days=detail.remaining_working_days,
        outcome_name=OUTCOME_NAMES.get(detail.outcome or ""),
        timeline=[
            PageLine(
                at=e.at,
                action_name=e.action_name,
                status_name=STATUS_NAMES[e.to_status],
                note=e.note if e.action in NOTED else None,
            )
            for e in detail.timeline
            if e.action in SHOWN
        ],
        contact_name=contact.name if contact else (slip.handler_name if slip else None),
        contact_phone=contact.work_phone if contact else (slip.handler_phone if slip else None),
        station_name=f"{station}便民服务站" if station else None,
    )
