"""Finding orders by their number or by the person they are for (a name, an ID number or a
phone) within the caller's scope (seed 004: 根据身份证号码…可查询), and showing that person
on an order: masked, or in full for a stated purpose.

ID numbers and phones are found through their keyed look-up hashes: nothing is decrypted
to search. Every search by person and every full view is audited with who, when and why;
a search by order number names no one and needs no purpose."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit, errors
from app.context import Context
from app.models import Account
from app.models.tables import ACCOUNTS, ORDERS, VERSIONS
from app.orders.queries import SCOPE_COLUMN
from app.orders.records import order_in_scope
from app.orders.states import STATUS_NAMES, OrderStatus
from app.security.identity import id_number_problem, is_phone, normalize_id_number
from app.security.pii import mask_id_number, mask_name, mask_phone
from app.security.tokens import Principal

STAFF = ("dispatcher", "admin")
MAX_FOUND = 50
MIN_PURPOSE = 4  # as for an unmasked export: a few words, not a letter


class FoundOrder(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    number: str
    item_name: str
    status: OrderStatus
    status_name: str
    submitted_at: datetime
    resident_name: str | None  # masked: 张*


class ResidentOnOrder(msgspec.Struct, rename="camel", kw_only=True):
    name: str | None
    phone: str | None
    id_number: str | None
    revealed: bool  # in full, for the purpose given (audited); else masked


def _purpose(purpose: str | None) -> str:
    text = (purpose or "").strip()
    if len(text) < MIN_PURPOSE:
        raise errors.InvalidInput(
            errors=[{"field": "purpose", "message": "按人查询或查看完整信息须写明用途"}]
        )
    return text


def find_orders(
    session: Session,
    ctx: Context,
    principal: Principal,
    *,
    by: str,
    value: str,
    purpose: str | None,
) -> list[FoundOrder]:
    """The orders in scope with that number (`by` number), or of the person named (`by` name,
    id_number or phone), newest first; a search by person is audited with its purpose (the
    value searched is not written to the log)."""
    if principal.role not in STAFF:
        raise errors.Forbidden()
    value = value.strip()
    if by == "number":
        return _found(session, principal, ORDERS.c.number == value.upper())
    why = _purpose(purpose)
    if by == "id_number":
        value = normalize_id_number(value)
        problem = id_number_problem(value, today=ctx.today())
        if problem:
            raise errors.InvalidInput(errors=[{"field": "value", "message": problem}])
        people = ACCOUNTS.c.id_number_hash == ctx.cipher.lookup_hash(value, context="id_number")
    elif by == "phone":
        if not is_phone(value):
            raise errors.InvalidInput(errors=[{"field": "value", "message": "电话号码格式不正确"}])
        people = ACCOUNTS.c.phone_hash == ctx.cipher.lookup_hash(value, context="phone")
    elif by == "name":
        if not 1 <= len(value) <= 40:
            raise errors.InvalidInput(errors=[{"field": "value", "message": "请填写姓名"}])
        people = ACCOUNTS.c.name == value
    else:
        raise errors.InvalidInput(errors=[{"field": "by", "message": "取值不在允许范围内"}])
    found = _found(session, principal, people)
    audit.record(
        session,
        principal,
        "pii.search",
        f"orders-by:{by}",
        ctx.now(),
        {"found": len(found)},
        purpose=why,
    )
    return found


def _found(session: Session, principal: Principal, condition: Any) -> list[FoundOrder]:
    rows = session.execute(
        select(
            ORDERS.c.id,
            ORDERS.c.number,
            VERSIONS.c.name.label("item_name"),
            ORDERS.c.status,
            ORDERS.c.submitted_at,
            ACCOUNTS.c.name.label("resident_name"),
        )
        .select_from(
            ORDERS.join(ACCOUNTS, ACCOUNTS.c.id == ORDERS.c.resident_id).join(
                VERSIONS, VERSIONS.c.id == ORDERS.c.item_version_id
            )
        )
        .where(SCOPE_COLUMN[principal.role] == principal.region_id, condition)
        .order_by(ORDERS.c.id.desc())
        .limit(MAX_FOUND)
    ).all()
    return [
        FoundOrder(
            id=r.id,
            number=r.number,
            item_name=r.item_name,
            status=r.status,
            status_name=STATUS_NAMES[r.status],
            submitted_at=r.submitted_at,
            resident_name=mask_name(r.resident_name),
        )
        for r in rows
    ]


def resident_of_order(
    session: Session, ctx: Context, principal: Principal, order_id: int, purpose: str | None
) -> ResidentOnOrder:
    """Who an order is for: masked, or in full when a purpose is given (audited)."""
    if principal.role not in STAFF:
        raise errors.Forbidden()
    order = order_in_scope(session, principal, order_id)
    person = session.get(Account, order.resident_id)
    if person is None:
        raise errors.NotFound()
    phone = ctx.cipher.decrypt(person.phone_enc, context="phone") if person.phone_enc else None
    id_number = (
        ctx.cipher.decrypt(person.id_number_enc, context="id_number")
        if person.id_number_enc
        else None
    )
    if purpose is None:
        return ResidentOnOrder(
            name=mask_name(person.name),
            phone=mask_phone(phone),
            id_number=mask_id_number(id_number),
            revealed=False,
        )
    why = _purpose(purpose)
    audit.record(session, principal, "pii.read", f"order:{order.id}", ctx.now(), purpose=why)
    return ResidentOnOrder(name=person.name, phone=phone, id_number=id_number, revealed=True)
