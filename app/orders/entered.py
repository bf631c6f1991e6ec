"""Orders an agent enters for a resident who phoned or walked in (代为委托), and how they
join that resident's WeChat account later.

The agent gives the resident's name, ID number and phone. The order belongs to the WeChat
account with that ID number and a phone WeChat itself confirmed; failing that, to a
placeholder resident without a login, one per ID number. When someone later logs in and
confirms that same ID number and phone, the placeholder's orders move to their account.
A phone typed by hand is not enough: ID photos must not reach whoever knows a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models import Account, Notification, Region
from app.models.tables import ACCOUNTS, EVENTS, ORDERS
from app.orders.records import event_values
from app.orders.submission import Entry, SubmitInput, Submitted, submit
from app.security import identity
from app.security.tokens import Principal


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    phone: str
    # Where the resident lives: a village agent's own village, which they need not give; an
    # agent of a town centre (便民服务中心) names a village of that town.
    village_id: int | None = None


def enter_order(
    session: Session, ctx: Context, principal: Principal, person: Person, data: SubmitInput
) -> Submitted:
    """An agent's order for `person`, handled by that agent: a village agent's for a resident
    of their village, a centre agent's for a resident of a village of their town."""
    if principal.role != "agent" or principal.region_id is None:
        raise errors.Forbidden()
    now = ctx.now()
    name, number = person.name.strip(), identity.normalize_id_number(person.id_number)
    problems = []
    if not 2 <= len(name) <= 20:
        problems.append({"field": "resident.name", "message": "姓名应为2到20个字"})
    problem = identity.id_number_problem(number, today=ctx.today())
    if problem:
        problems.append({"field": "resident.idNumber", "message": problem})
    if not identity.is_mobile(person.phone):
        problems.append({"field": "resident.phone", "message": "请填写11位手机号码"})
    if not data.entrustment_upload_ids:  # the photos themselves are checked with the rest
        problems.append({"field": "entrustmentUploadIds", "message": "请拍照上传群众签字的委托书"})
    village_id, problem = _village_of(session, principal.region_id, person.village_id)
    if problem:
        problems.append({"field": "resident.villageId", "message": problem})
    if problems:
        raise errors.InvalidInput("填写的内容有误", errors=problems)
    resident_id = _resident_for(session, ctx, village_id, name, number, person.phone, now)
    return submit(session, ctx, principal, data, Entry(resident_id, village_id))


def _village_of(session: Session, post_id: int, given: int | None) -> tuple[int, str | None]:
    """The resident's village for an agent posted at `post_id`, or a problem to report."""
    post = session.get(Region, post_id)
    if post is None or post.level == "village":
        if given not in (None, post_id):
            return post_id, "只能为本村(社区)群众代为委托"
        return post_id, None
    village = session.get(Region, given) if given else None
    if village is None or village.town_id != post.id or village.level != "village":
        return post_id, "请选择群众所在的本镇村(社区)"
    if village.retired_at is not None:
        return post_id, f"{village.name}已撤销"
    return village.id, None


def _resident_for(
    session: Session,
    ctx: Context,
    village_id: int,
    name: str,
    id_number: str,
    phone: str,
    now: datetime,
) -> int:
    id_hash = ctx.cipher.lookup_hash(id_number, context="id_number")
    phone_hash = ctx.cipher.lookup_hash(phone, context="phone")
    resident = ACCOUNTS.c.role == "resident", ACCOUNTS.c.disabled_at.is_(None)
    own = session.scalar(
        select(ACCOUNTS.c.id)
        .where(
            *resident,
            ACCOUNTS.c.openid.is_not(None),
            ACCOUNTS.c.id_number_hash == id_hash,
            ACCOUNTS.c.phone_hash == phone_hash,
            ACCOUNTS.c.phone_verified_at.is_not(None),
        )
        .order_by(ACCOUNTS.c.id)
        .limit(1)
    )
    if own is not None:
        return int(own)
    # The agent has just seen the ID card: the placeholder takes the name and phone given.
    values = {
        "name": name,
        "region_id": village_id,
        "phone_enc": ctx.cipher.encrypt(phone, context="phone"),
        "phone_hash": phone_hash,
        "updated_at": now,
    }
    placeholder = session.scalar(
        select(ACCOUNTS.c.id)
        .where(*resident, ACCOUNTS.c.openid.is_(None), ACCOUNTS.c.id_number_hash == id_hash)
        .order_by(ACCOUNTS.c.id)
        .limit(1)
    )
    if placeholder is not None:
        session.execute(update(ACCOUNTS).where(ACCOUNTS.c.id == placeholder).values(values))
        return int(placeholder)
    return int(
        session.execute(
            insert(ACCOUNTS)
            .values(
                role="resident",
                on_duty=False,
                id_number_enc=ctx.cipher.encrypt(id_number, context="id_number"),
                id_number_hash=id_hash,
                created_at=now,
                **values,
            )
            .returning(ACCOUNTS.c.id)
        ).scalar_one()
    )


def claim_entered_orders(session: Session, ctx: Context, account: Account) -> int:
    """Move the orders agents entered for this ID number and phone to `account`, once its
    phone came from WeChat; each order's timeline says so. Returns how many moved."""
    if not (
        account.role == "resident"
        and account.openid
        and account.id_number_hash
        and account.phone_hash
        and account.phone_verified_at
    ):
        return 0
    placeholders = session.scalars(
        select(ACCOUNTS.c.id).where(
            ACCOUNTS.c.role == "resident",
            ACCOUNTS.c.openid.is_(None),
            ACCOUNTS.c.disabled_at.is_(None),
            ACCOUNTS.c.id_number_hash == account.id_number_hash,
            ACCOUNTS.c.phone_hash == account.phone_hash,
        )
    ).all()
    if not placeholders:
        return 0
    now = ctx.now()
    owner = Principal(account.id, "resident", account.region_id)
    orders = session.execute(
        select(ORDERS.c.id, ORDERS.c.status).where(ORDERS.c.resident_id.in_(placeholders))
    ).all()
    session.execute(
        update(ORDERS)
        .where(ORDERS.c.resident_id.in_(placeholders))
        .values(resident_id=account.id, updated_at=now)
    )
    if orders:
        session.execute(
            insert(EVENTS),
            [
                event_values(
                    order.id,
                    owner,
                    now,
                    "claim",
                    order.status,
                    order.status,
                    "身份证号和微信手机号核验一致,办件归入本人账号",
                )
                for order in orders
            ],
        )
    # The messages about those orders (acceptance, supplements…) join the inbox too.
    session.execute(
        update(Notification)
        .where(Notification.recipient_id.in_(placeholders))
        .values(recipient_id=account.id)
    )
    session.execute(update(ACCOUNTS).where(ACCOUNTS.c.id.in_(placeholders)).values(disabled_at=now))
    return len(orders)
