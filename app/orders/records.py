"""What every order use case shares: the tables and statements, the errors, reading an
order in the caller's scope (the rule is app/scope.py's), the timeline, material checks and
attachments, and the guide-version cache.

Use cases are plain synchronous functions on a Session, run by `Database.run_write` or
`run_read` in one transaction: on SQLite one hop to a database thread, so the write lock is
held only while the statements run. The hot statements are built once at import: building a
statement costs SQLAlchemy more than SQLite takes to run it.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from app import errors, scope
from app.catalogue.document import ESSENTIAL_MATERIALS
from app.context import Context
from app.kinds import DeliveryMethod, GreenChannelSource, OrderChannel, Outcome
from app.models import (
    ItemVersion,
)
from app.models.tables import ACCOUNTS, EVENTS, ORDERS, REGIONS, UPLOADS
from app.orders.states import ACTION_NAMES, RUNNING, STATUS_NAMES, OrderStatus
from app.security.tokens import Principal
from app.statements import DriverStatement, connection_of

MAX_ID = 2**63 - 1
VERSION_CACHE_SIZE = 2000


class OrderRow(Protocol):
    """An order as a plain row of the orders table, as `select(ORDERS)` gives it (a Core
    Row), or those values in a SimpleNamespace for an order just written: cheaper than an
    ORM object (an `Order` fits too). Read only: an order changes through the moves'
    compare-and-set UPDATEs."""

    @property
    def id(self) -> int: ...

    @property
    def number(self) -> str: ...

    @property
    def resident_id(self) -> int: ...

    @property
    def village_id(self) -> int: ...

    @property
    def town_id(self) -> int: ...

    @property
    def district_id(self) -> int: ...

    @property
    def item_id(self) -> int: ...

    @property
    def item_version_id(self) -> int: ...

    @property
    def status(self) -> OrderStatus: ...

    @property
    def channel(self) -> OrderChannel: ...

    @property
    def green_channel(self) -> bool: ...

    @property
    def home_visit(self) -> bool: ...

    @property
    def appointment_at(self) -> datetime | None: ...

    @property
    def priority(self) -> int: ...

    @property
    def note(self) -> str | None: ...

    @property
    def materials(self) -> dict[str, Any]: ...

    @property
    def agent_id(self) -> int | None: ...

    @property
    def assigned_at(self) -> datetime | None: ...

    @property
    def supplement_requested_at(self) -> datetime | None: ...

    @property
    def supplement_rounds(self) -> int: ...

    @property
    def dispute_rounds(self) -> int: ...

    @property
    def first_due_at(self) -> datetime | None: ...

    @property
    def first_overdue_at(self) -> datetime | None: ...

    @property
    def first_completed_at(self) -> datetime | None: ...

    @property
    def progress(self) -> dict[str, Any] | None: ...

    @property
    def ended_at(self) -> datetime | None: ...

    @property
    def progress_page_seed(self) -> str | None: ...

    @property
    def green_channel_source(self) -> GreenChannelSource | None: ...

    @property
    def first_contact_id(self) -> int | None: ...

    @property
    def home_village_id(self) -> int | None: ...

    @property
    def entrustment_upload_ids(self) -> list[int] | None: ...

    @property
    def entrustment_signature(self) -> dict[str, Any] | None: ...

    @property
    def voice_note_upload_ids(self) -> list[int] | None: ...

    @property
    def idempotency_key(self) -> str | None: ...

    @property
    def request_hash(self) -> str | None: ...

    @property
    def submitted_at(self) -> datetime: ...

    @property
    def accepted_at(self) -> datetime | None: ...

    @property
    def promised_days(self) -> int: ...

    @property
    def due_at(self) -> datetime | None: ...

    @property
    def due_provisional(self) -> bool: ...

    @property
    def clock_started_at(self) -> datetime | None: ...

    @property
    def clock_days(self) -> int | None: ...

    @property
    def overdue_at(self) -> datetime | None: ...

    @property
    def remaining_days(self) -> int | None: ...

    @property
    def completed_at(self) -> datetime | None: ...

    @property
    def outcome(self) -> Outcome | None: ...

    @property
    def outcome_note(self) -> str | None: ...

    @property
    def fees_collected_fen(self) -> int: ...

    @property
    def delay_explanation(self) -> str | None: ...

    @property
    def delivered_at(self) -> datetime | None: ...

    @property
    def delivery_method(self) -> DeliveryMethod | None: ...

    @property
    def closed_at(self) -> datetime | None: ...

    @property
    def updated_at(self) -> datetime: ...


# The hot paths' statements, built once: SQLAlchemy then only binds and runs them (building
# a statement costs more than SQLite takes to run it).
ORDER_BY_ID = DriverStatement(select(ORDERS).where(ORDERS.c.id == bindparam("id")))
STATUS_AND_AGENT_BY_ID = select(ORDERS.c.status, ORDERS.c.agent_id).where(
    ORDERS.c.id == bindparam("id")
)
UPLOADS_BY_ID = select(
    UPLOADS.c.id,
    UPLOADS.c.owner_id,
    UPLOADS.c.status,
    UPLOADS.c.order_id,
    UPLOADS.c.kept_for,
    UPLOADS.c.purpose,
).where(UPLOADS.c.id.in_(bindparam("ids", expanding=True)))
# 语音留言: voice notes go in this field of a request, and nowhere else.
VOICE_FIELD = "voiceNoteUploadIds"


@functools.lru_cache(maxsize=128)
def claim_statement(count: int, voice: bool = False) -> DriverStatement:
    """The guarded attach of `count` uploads, one statement per count: an expanding IN is
    rendered afresh on every run, which cost more than the update (bench/orders.py).
    Voice notes are attached as such (`voice`) and never as anything else."""
    return DriverStatement(
        update(UPLOADS)
        .where(
            UPLOADS.c.id.in_([bindparam(f"id{i}") for i in range(count)]),
            # "not attached", written so that it does not imply `order_id IS NULL`: that
            # would let PostgreSQL choose the partial index of all unattached photos
            # (ix_uploads_unattached) whenever its statistics think there are few, and
            # filter every one of them (56 submissions/s on a bench that had just made
            # 20,000; tests/orders/test_query_plans.py). Order ids are positive.
            func.coalesce(UPLOADS.c.order_id, 0) == 0,
            UPLOADS.c.kept_for.is_(None),  # a complaint's or an appeal's evidence
            UPLOADS.c.owner_id == bindparam("owner"),
            UPLOADS.c.status == "ready",
            (UPLOADS.c.purpose == "voice") if voice else (UPLOADS.c.purpose != "voice"),
        )
        .values(order_id=bindparam("order_id"))
    )


INSERT_EVENT = DriverStatement(insert(EVENTS))
REGION_NAME = select(REGIONS.c.name).where(REGIONS.c.id == bindparam("id"))
AGENT_CONTACT = DriverStatement(
    select(ACCOUNTS.c.id, ACCOUNTS.c.name, ACCOUNTS.c.work_phone).where(
        ACCOUNTS.c.id == bindparam("id")
    )
)

IllegalTransition = errors.error("illegal_transition", 409, "当前状态下不能进行该操作")
IdempotencyConflict = errors.error("idempotency_conflict", 422, "同一请求标识已用于另一份委托")
ProfileIncomplete = errors.error(
    "profile_incomplete", 409, "请先完善姓名、身份证号、手机号和所在村"
)
ItemNotOnline = errors.error("item_not_online", 422, "该事项须本人到场办理,不能线上委托")
DelayExplanationRequired = errors.error(
    "delay_explanation_required", 409, "已超过承诺时限,请先填写延期说明"
)
NotOverdue = errors.error("not_overdue", 409, "办件尚未超期,不需要延期说明")
UploadInUse = errors.error("upload_in_use", 409, "有文件刚被用于其他办件,请重新选择")
GapsOutstanding = errors.error("materials_outstanding", 409, "容缺受理的材料尚未补齐,不能准予办结")
DisputeWindowOver = errors.error("dispute_window_over", 409, "已超过提出异议的期限")

# 容缺受理: a required material may follow after acceptance where its guide marks it so
# (`may_follow`), never the ESSENTIAL_MATERIALS: a catalogue import refuses the mark on
# them, and here they are a last guard for a guide stored before that check.
GAP_REASON = "容缺受理,请在办结前补正"


def may_follow(version: ItemVersion, slot: dict[str, Any]) -> bool:
    """May this required material be missing at submission and acceptance (容缺)? `slot` is
    a material of `version`'s guide, which marks each one that may follow."""
    return (
        bool(slot.get("may_follow", False))
        and bool(slot.get("required", True))
        and slot["code"] not in ESSENTIAL_MATERIALS
    )


def gaps(order: OrderRow) -> list[str]:
    """The slots an accepted order still owes (容缺受理, not yet supplemented)."""
    if order.status not in RUNNING:
        return []
    return sorted(c for c, s in order.materials.items() if s.get("state") == "missing")


def unserved_outcome_of(status: str, ended_by: str | None) -> str | None:
    """How an order that was not carried through ended, when that is rated (好差评全覆盖):
    refused (不予受理) or terminated by staff (终止办理; `ended_by`, the action that
    cancelled it). None for a withdrawal, an expiry, or an order not ended that way."""
    if status == "rejected":
        return "refused"
    if status == "cancelled" and ended_by == "terminate":
        return "terminated"
    return None


def dispute_open(order: OrderRow, now: datetime, window: timedelta) -> bool:
    """May the resident still dispute this handed-back order (提出异议)? Within the rating
    window after the hand-back, as the rating counts it: `window` natural days from
    `delivered_at` (DAIBAN_RATINGS_WINDOW_DAYS); at its end the default rating closes it."""
    return (
        order.status == "delivered"
        and order.delivered_at is not None
        and now < order.delivered_at + window
    )


def illegal(status: str, action: str, detail: str | None = None) -> errors.DomainError:
    """409 naming the order's current status, so the phone can refresh to the truth."""
    return IllegalTransition(
        detail or f"办件当前为“{STATUS_NAMES[status]}”,不能{ACTION_NAMES.get(action, action)}",
        currentStatus=status,
        currentStatusName=STATUS_NAMES[status],
    )


def guide_version(session: Session, ctx: Context, version_id: int) -> ItemVersion:
    """Guide versions never change once written (an edit makes a new one): cache them."""
    cache: dict[int, ItemVersion] = ctx.caches.setdefault("guide_versions", {})
    version = cache.get(version_id)
    if version is None:
        version = session.get(ItemVersion, version_id)
        assert version is not None, version_id
        session.expunge(version)
        if len(cache) >= VERSION_CACHE_SIZE:
            cache.clear()
        cache[version_id] = version
    return version


def check_materials(
    session: Session,
    principal: Principal,
    version: ItemVersion,
    given: dict[str, list[int]],
    *,
    at_submit: bool,
    only: set[str] | None = None,
    other_files: dict[str, list[int]] | None = None,
    files_claimed_later: bool = False,
    to_sign: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Every slot of the guide with its uploads; each problem listed, none hidden (those of
    `other_files`, photos beside the materials, too). With `files_claimed_later` the files
    are looked at here only when something else is wrong (to list it all at once); the
    caller then attaches them with `claim_uploads`, which checks them as it writes.
    `to_sign`: slots the resident will sign on the phone before 受理 (the entrustment), so
    not wanted at submission."""
    slots = {m["code"]: m for m in version.materials}
    problems = [
        {"field": f"materials.{code}", "message": "该事项没有这项材料"}
        for code in given
        if code not in slots
    ]
    files = {f"materials.{c}": ids for c, ids in given.items()} | (other_files or {})
    at = len(problems)
    if not files_claimed_later:
        problems += upload_problems(session, principal, files)
    if only is not None:
        wanted = only
    else:
        wanted = {
            c
            for c, m in slots.items()
            if m.get("required", True)
            and not (at_submit and (may_follow(version, m) or c in to_sign))
        }
    for code in sorted(wanted):
        if code in slots and not given.get(code):
            problems.append(
                {"field": f"materials.{code}", "message": f"请上传{slots[code]['name']}"}
            )
    if problems and files_claimed_later:
        problems[at:at] = upload_problems(session, principal, files)
    if problems:
        raise errors.InvalidInput("材料有问题,请按提示补充", errors=problems)
    return {
        code: {
            "uploads": list(given.get(code, [])),
            "state": "submitted" if given.get(code) else "empty",
            "reason": None,
        }
        for code in slots
    }


def upload_problems(
    session: Session,
    principal: Principal,
    given: dict[str, list[int]],
    claimed_by: int | None = None,
) -> list[dict[str, str]]:
    """Each id must be the caller's own finished upload, not yet part of any order (but the
    order `claimed_by`, being written)."""
    ids = sorted({i for values in given.values() for i in values})
    if not ids:
        return []
    found = {row.id: row for row in session.execute(UPLOADS_BY_ID, {"ids": ids})}
    problems = []
    for field_name, values in given.items():
        for upload_id in values:
            upload = found.get(upload_id)
            if upload is None or upload.owner_id != principal.account_id:
                problems.append({"field": field_name, "message": f"没有找到文件 {upload_id}"})
            elif upload.status != "ready":
                problems.append({"field": field_name, "message": "文件还没有上传完成"})
            elif upload.order_id not in (None, claimed_by):
                problems.append({"field": field_name, "message": "该文件已用于其他办件"})
            elif upload.kept_for is not None and upload.kept_for.startswith("wallet:"):
                message = "材料夹中的证件请先选择“使用”,再作为材料提交"
                problems.append({"field": field_name, "message": message})
            elif upload.kept_for is not None:
                problems.append({"field": field_name, "message": "该文件已用于投诉或申诉"})
            elif purpose_problem := _purpose_problem(field_name, upload.purpose):
                problems.append({"field": field_name, "message": purpose_problem})
    return problems


def _purpose_problem(field_name: str, purpose: str) -> str | None:
    if field_name == VOICE_FIELD and purpose != "voice":
        return "请选择语音留言的录音"
    if field_name != VOICE_FIELD and purpose == "voice":
        return "录音只能作为语音留言"
    return None


def claim_uploads(
    session: Session, principal: Principal, order_id: int, files: dict[str, list[int]]
) -> None:
    """Attach the caller's own finished, unattached uploads to a new order in one guarded
    statement (no read first); when one is not, say which and why. The caller's unit of
    work then fails as a whole, the order with it."""
    voice = files.get(VOICE_FIELD, [])
    others = [i for name, ids in files.items() if name != VOICE_FIELD for i in ids]
    if _claimed(session, principal, order_id, others) and _claimed(
        session, principal, order_id, voice, voice=True
    ):
        return
    problems = upload_problems(session, principal, files, claimed_by=order_id)
    if problems:
        raise errors.InvalidInput("材料有问题,请按提示补充", errors=problems)
    raise UploadInUse()


def attach_uploads(session: Session, principal: Principal, order_id: int, ids: list[int]) -> None:
    """Files a move checked already: a file another order took in the meantime fails the
    whole move."""
    if not _claimed(session, principal, order_id, ids):
        raise UploadInUse()


def _claimed(
    session: Session, principal: Principal, order_id: int, ids: list[int], *, voice: bool = False
) -> bool:
    """Whether every one of `ids` (the caller's own, finished, unattached, voice notes or
    not as `voice` says) is now the order's, by one guarded statement."""
    unique = sorted(set(ids))
    if not unique:
        return True
    params: dict[str, int] = {f"id{i}": upload_id for i, upload_id in enumerate(unique)}
    params |= {"order_id": order_id, "owner": principal.account_id}
    statement = claim_statement(len(unique), voice)
    return statement.rowcount(session.connection(), params) == len(unique)


def record_event(
    session: Session,
    order_id: int,
    principal: Principal | None,
    at: datetime,
    action: str,
    from_status: str | None,
    to_status: str,
    note: str | None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    values = event_values(order_id, principal, at, action, from_status, to_status, note, data)
    INSERT_EVENT.many(session.connection(), [values])
    return values


def event_values(
    order_id: int,
    principal: Principal | None,
    at: datetime,
    action: str,
    from_status: str | None,
    to_status: str,
    note: str | None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One timeline row; no principal means the system (a rule or a scheduled job)."""
    return {
        "order_id": order_id,
        "at": at,
        "actor_id": principal.account_id if principal else None,
        "actor_role": principal.role if principal else "system",
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "note": note,
        "data": data,
    }


def order_in_scope(session: Session, principal: Principal, order_id: int) -> OrderRow:
    """Residents: their own; agents: assigned to them or in their village; dispatchers: their
    town; admins: their district. Anything else is 404."""
    order: OrderRow | None = (
        ORDER_BY_ID.one_or_none(connection_of(session), {"id": order_id})
        if 0 < order_id <= MAX_ID
        else None
    )
    if order is None or not scope.in_scope(principal, order, scope.ORDER):
        raise errors.NotFound("没有找到该办件")
    return order


def own_order(session: Session, principal: Principal, order_id: int) -> OrderRow:
    """An order in the caller's scope that is theirs to work on: its agent's (403 else)."""
    order = order_in_scope(session, principal, order_id)
    if principal.role != "agent" or order.agent_id != principal.account_id:
        raise errors.Forbidden("该办件不是派给您的")
    return order


def is_overdue(order: OrderRow, now: datetime) -> bool:
    """Past due while the clock runs, or found overdue before a hold stopped it."""
    if order.status not in RUNNING:
        return False
    if order.overdue_at is not None:
        return True
    return order.status == "accepted" and order.due_at is not None and now >= order.due_at
