"""One-tap submission (委托): every check in one statement, then the order, its number, its
photos and the first timeline event."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Date, bindparam, insert, select, text
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.orders.records import (
    ACCOUNTS,
    ENABLED,
    ITEMS,
    ORDERS,
    REGIONS,
    IdempotencyConflict,
    ItemNotOnline,
    ProfileIncomplete,
    attach_uploads,
    check_materials,
    guide_version,
    record_event,
)
from app.security.tokens import Principal

# Everything a submission checks before writing, in one statement: an earlier order with
# the same Idempotency-Key, the resident's profile and village, the item and whether the
# village offers it.
_SAME_KEY = (
    ORDERS.c.resident_id == bindparam("account"),
    ORDERS.c.idempotency_key == bindparam("key"),
)
SUBMISSION_CONTEXT = (
    select(
        select(ORDERS.c.id).where(*_SAME_KEY).scalar_subquery().label("existing_id"),
        select(ORDERS.c.request_hash).where(*_SAME_KEY).scalar_subquery().label("existing_hash"),
        ACCOUNTS.c.name,
        ACCOUNTS.c.phone_enc,
        ACCOUNTS.c.id_number_enc,
        REGIONS.c.id.label("village_id"),
        REGIONS.c.town_id,
        REGIONS.c.district_id,
        ITEMS.c.id.label("item_id"),
        ITEMS.c.current_version_id,
        ENABLED.c.item_id.label("enabled"),
    )
    .select_from(
        ACCOUNTS.outerjoin(REGIONS, REGIONS.c.id == ACCOUNTS.c.region_id)
        .outerjoin(ITEMS, (ITEMS.c.code == bindparam("code")) & ITEMS.c.retired_at.is_(None))
        .outerjoin(
            ENABLED, (ENABLED.c.item_id == ITEMS.c.id) & (ENABLED.c.region_id == REGIONS.c.id)
        )
    )
    .where(ACCOUNTS.c.id == bindparam("account"), ACCOUNTS.c.disabled_at.is_(None))
)
INSERT_ORDER = insert(ORDERS).returning(ORDERS.c.id)


@dataclass
class SubmitInput:
    item_code: str
    materials: dict[str, list[int]]
    idempotency_key: str
    note: str | None = None
    green_channel: bool = False


def request_hash(data: SubmitInput) -> str:
    body = msgspec.json.encode(
        {
            "item": data.item_code,
            "materials": {k: sorted(v) for k, v in sorted(data.materials.items())},
            "note": data.note,
            "green": data.green_channel,
        }
    )
    return hashlib.sha256(body).hexdigest()


@dataclass
class Submitted:
    """A submission's outcome: the order id and, when it is new, what was written, so the
    answer can be built without reading it back (None on an idempotent retry)."""

    order_id: int
    values: dict[str, Any] | None = None
    event: dict[str, Any] | None = None
    actor_name: str | None = None


def submit(session: Session, ctx: Context, principal: Principal, data: SubmitInput) -> Submitted:
    """Submit a request for the resident (the same order again on a retry)."""
    digest = request_hash(data)
    found = session.execute(
        SUBMISSION_CONTEXT,
        {"account": principal.account_id, "key": data.idempotency_key, "code": data.item_code},
    ).one_or_none()
    if found is None:
        raise errors.Unauthenticated()
    if found.existing_id is not None:  # a retry on a weak signal: the same order
        if found.existing_hash != digest:
            raise IdempotencyConflict()
        return Submitted(int(found.existing_id))
    name, village_id, town_id, district_id = (
        found.name,
        found.village_id,
        found.town_id,
        found.district_id,
    )
    if not all((name, found.phone_enc, found.id_number_enc, village_id, town_id, district_id)):
        raise ProfileIncomplete()
    if found.enabled is None or found.current_version_id is None:
        raise errors.NotFound("本村暂不能办理该事项")
    item_id, version_id = found.item_id, found.current_version_id
    version = guide_version(session, ctx, version_id)
    if version.mode == "consult" or version.in_person:
        raise ItemNotOnline()
    materials = check_materials(session, principal, version, data.materials, at_submit=True)
    now = ctx.now()
    # Plain Core statements on the table: SQLAlchemy caches their compiled form (the dialect
    # upsert constructs are compiled afresh every time, which cost more than the SQL).
    values = {
        "number": next_number(session, ctx, now),
        "resident_id": principal.account_id,
        "village_id": village_id,
        "town_id": town_id,
        "district_id": district_id,
        "item_id": item_id,
        "item_version_id": version.id,
        "status": "submitted",
        "channel": "mini_program" if principal.role == "resident" else "agent",
        "green_channel": data.green_channel,
        "note": data.note,
        "materials": materials,
        "idempotency_key": data.idempotency_key,
        "request_hash": digest,
        "submitted_at": now,
        "promised_days": version.promised_days,
        "due_provisional": False,
        "fees_collected_fen": 0,
        "updated_at": now,
    }
    order_id = int(session.execute(INSERT_ORDER, values).scalar_one())
    attach_uploads(session, order_id, [i for ids in data.materials.values() for i in ids])
    event = record_event(session, order_id, principal, now, "submit", None, "submitted", data.note)
    return Submitted(order_id, {**values, "id": order_id}, event, name)


NEXT_NUMBER = text(
    "INSERT INTO order_number_counters (day, last) VALUES (:day, 1) "
    "ON CONFLICT (day) DO UPDATE SET last = order_number_counters.last + 1 RETURNING last"
).bindparams(bindparam("day", type_=Date))


def next_number(session: Session, ctx: Context, now: datetime) -> str:
    """DB + business date + a 6-digit daily sequence, unique across processes (one statement;
    the upsert is the same SQL on SQLite and PostgreSQL)."""
    day = now.astimezone(ctx.settings.zone).date()
    sequence = session.execute(NEXT_NUMBER, {"day": day}).scalar_one()
    return f"DB{day:%Y%m%d}{sequence:06d}"
