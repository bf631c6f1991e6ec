"""Reading orders: lists for each role (keyset pages) and the full detail.

Synchronous functions run by `Database.run_read`: one thread hop per request on SQLite.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Row, Select, bindparam, case, literal_column, select
from sqlalchemy.orm import Session

from app import errors
from app.catalogue.outputs import KIND_NAMES
from app.context import Context
from app.models import ItemVersion
from app.models.tables import ACCOUNTS, EVENTS, ITEMS, ORDERS, UPLOADS, VERSIONS, looked_up
from app.orders import outputs
from app.orders.progress import STEP_NAMES, TRACKED_KINDS, parts_of
from app.orders.records import (
    AGENT_CONTACT,
    MAX_ID,
    ORDER_BY_ID,
    OrderRow,
    dispute_open,
    gaps,
    guide_version,
    is_overdue,
    may_follow,
    order_in_scope,
    unserved_outcome_of,
)
from app.orders.states import (
    ACTION_NAMES,
    OPEN,
    RUNNING,
    STATUS_NAMES,
    OrderEventAction,
    actions_from,
)
from app.orders.submission import Submitted
from app.security.tokens import Principal
from app.statements import DriverStatement, connection_of
from app.work_calendar import work_calendar
from app.workdays import WorkCalendar

MAX_PAGE = 50
URL_SEGMENTS = {"rate": "rating"}  # POST /orders/{id}/rating, the ratings issue's route
SCOPE_COLUMN = {
    "resident": ORDERS.c.resident_id,
    "agent": ORDERS.c.agent_id,
    "dispatcher": ORDERS.c.town_id,
    "admin": ORDERS.c.district_id,
}
EVENTS_OF_ORDER = DriverStatement(
    select(EVENTS, ACCOUNTS.c.name.label("actor_name"), ACCOUNTS.c.work_phone.label("actor_phone"))
    .select_from(EVENTS.outerjoin(ACCOUNTS, ACCOUNTS.c.id == EVENTS.c.actor_id))
    .where(EVENTS.c.order_id == bindparam("order_id"))
    .order_by(EVENTS.c.id)
)
ITEM_CODE = select(ITEMS.c.code).where(ITEMS.c.id == bindparam("id"))
VOICE_NOTES = select(UPLOADS.c.id, UPLOADS.c.duration_ms).where(
    UPLOADS.c.id.in_(bindparam("ids", expanding=True))
)
# Where a staff list's cursor order stands now: its id alone does not place it.
POSITION_OF_ORDER = DriverStatement(
    select(ORDERS.c.status, ORDERS.c.priority, ORDERS.c.due_at, ORDERS.c.remaining_days).where(
        ORDERS.c.id == bindparam("id")
    )
)
CursorInvalid = errors.error("cursor_invalid", 422, "列表已变化,请从第一页重新加载")


@functools.lru_cache(maxsize=256)
def _list_statement(
    role: str,
    status: bool,
    village: bool,
    agent: bool,
    overdue: bool | None,
    due_first: bool,
    cursor: str | None,
) -> DriverStatement:
    """One statement per shape of filters, built once; each page only binds values. `cursor`
    says which order the page continues: "id" (newest first), "priority" (staff lists),
    "running" or "held" (due first: from a running order, or from one on hold)."""
    query = select(
        ORDERS.c.id,
        ORDERS.c.number,
        ORDERS.c.status,
        ORDERS.c.green_channel,
        ORDERS.c.home_visit,
        ORDERS.c.appointment_at,
        ORDERS.c.submitted_at,
        ORDERS.c.due_at,
        ORDERS.c.overdue_at.is_not(None).label("late"),  # a flag: no timestamp to parse
        looked_up(ITEMS.c.code, ORDERS.c.item_id),
        looked_up(VERSIONS.c.name, ORDERS.c.item_version_id),
    ).where(SCOPE_COLUMN[role] == bindparam("scope"))
    if status:
        query = query.where(ORDERS.c.status == bindparam("status"))
    if village:
        query = query.where(ORDERS.c.village_id == bindparam("village"))
    if agent:
        query = query.where(ORDERS.c.agent_id == bindparam("agent"))
    if overdue is not None:
        # The same rule as records.is_overdue: past due while the clock runs, or found
        # overdue before a hold stopped it (a hold alone never makes an order late).
        # The statuses written in the SQL: a list bound at run time is rendered afresh on
        # every run, and the driver's path (app/statements.py) takes none.
        running = ORDERS.c.status.in_([literal_column(f"'{s}'") for s in sorted(RUNNING)])
        late = (running & ORDERS.c.overdue_at.is_not(None)) | (
            (ORDERS.c.status == "accepted") & (ORDERS.c.due_at <= bindparam("now"))
        )
        query = query.where(late) if overdue else query.where(~late)
    if due_first:
        query = _due_first(query, cursor)
    elif role == "resident":
        if cursor:
            query = query.where(ORDERS.c.id < bindparam("cursor"))
        query = query.order_by(ORDERS.c.id.desc()).limit(bindparam("limit"))
    else:  # staff see flagged orders (green channel, visits) first, each part newest first
        if cursor:
            priority: Any = bindparam("priority")
            query = query.where(
                (ORDERS.c.priority < priority)
                | ((ORDERS.c.priority == priority) & (ORDERS.c.id < bindparam("cursor")))
            )
        query = query.order_by(ORDERS.c.priority.desc(), ORDERS.c.id.desc()).limit(
            bindparam("limit")
        )
    return DriverStatement(query)


def _after(column: Any, name: str) -> Any:
    """Past the cursor order in (`column`, id) ascending: `column` beyond the value bound as
    `name`, or equal to it with a higher id."""
    value: Any = bindparam(name)
    return (column > value) | ((column == value) & (ORDERS.c.id > bindparam("cursor")))


def _due_first(query: Select[Any], cursor: str | None) -> Select[Any]:
    """Running orders soonest due first; then those on hold, whose clock is stopped and whose
    old due time means nothing until they resume: fewest working days left first (an order
    already overdue when held has none left)."""
    running, held = ORDERS.c.status == "accepted", ORDERS.c.status == "on_hold"
    query = query.where(running | held)
    if cursor == "running":
        query = query.where((running & _after(ORDERS.c.due_at, "after")) | held)
    elif cursor == "held":
        query = query.where(held & _after(ORDERS.c.remaining_days, "left"))
    return query.order_by(
        case((running, 0), else_=1),
        case((running, ORDERS.c.due_at)),
        case((held, ORDERS.c.remaining_days)),
        ORDERS.c.id,
    ).limit(bindparam("limit"))


def list_orders(
    session: Session,
    ctx: Context,
    principal: Principal,
    *,
    status: str | None,
    village_id: int | None = None,
    agent_id: int | None = None,
    overdue: bool | None = None,
    cursor: int | None,
    limit: int,
    due_first: bool = False,
) -> outputs.OrderPage:
    """Newest first by id, one indexed range scan per page whatever the table's size; or,
    with `due_first`, the running orders (办理中) soonest due first, then those on hold (中止)."""
    limit = max(1, min(limit, MAX_PAGE))
    now = ctx.now()
    scope = principal.account_id if principal.role in ("resident", "agent") else principal.region_id
    params: dict[str, Any] = {
        "scope": scope,
        "status": status,
        "village": village_id,
        "agent": agent_id,
        "now": now,
        "cursor": min(cursor, MAX_ID) if cursor is not None else None,
        "limit": limit + 1,
    }
    position = None
    if cursor is not None:
        position = "id"
        if due_first or principal.role != "resident":
            position = _position(session, params, due_first)
    statement = _list_statement(
        principal.role,
        status is not None,
        village_id is not None,
        agent_id is not None,
        overdue,
        due_first,
        position,
    )
    # Core, on the read's own connection: the ORM session's execute costs more than the query.
    rows = statement.rows(connection_of(session), params)
    items = [
        outputs.OrderSummary(
            id=order_id,
            number=number,
            item_code=code,
            item_name=name,
            status=status,
            status_name=STATUS_NAMES[status],
            green_channel=green,
            home_visit=home_visit,
            appointment_at=appointment_at,
            submitted_at=submitted_at,
            due_at=due_at,
            overdue=(status in RUNNING and bool(late))
            or (status == "accepted" and due_at is not None and now >= due_at),
        )
        # Plain tuples: attribute access on a Row costs more than building the summary.
        for (
            order_id,
            number,
            status,
            green,
            home_visit,
            appointment_at,
            submitted_at,
            due_at,
            late,
            code,
            name,
        ) in (tuple(row) for row in rows[:limit])
    ]
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return outputs.OrderPage(items=items, next_cursor=next_cursor)


def _position(session: Session, params: dict[str, Any], due_first: bool) -> str:
    """Where the cursor order stands now, put into `params`; an order that cannot be placed
    (none has that id) is refused rather than quietly starting again at the first page."""
    row = POSITION_OF_ORDER.one_or_none(connection_of(session), {"id": params["cursor"]})
    if row is not None and not due_first:
        params["priority"] = row.priority
        return "priority"
    if row is not None and row.status == "on_hold" and row.remaining_days is not None:
        params["left"] = row.remaining_days
        return "held"
    if row is not None and row.due_at is not None:  # running, or finished since the last page
        params["after"] = row.due_at
        return "running"
    raise CursorInvalid(errors=[{"field": "cursor", "message": "分页位置已失效"}])


def next_actions(
    order: OrderRow,
    version: ItemVersion,
    principal: Principal,
    now: datetime,
    events: Sequence[Any] = (),
    window: timedelta | None = None,
) -> list[str]:
    """What this caller can do next, as the URL segments the phone posts to."""
    if principal.role == "agent" and order.agent_id != principal.account_id:
        return []
    actions = actions_from(order.status, principal.role)
    if "transfer" in actions and order.home_village_id is None:
        actions.remove("transfer")  # 全区通办 only: served away from home
    if "dispute" in actions and (window is None or not dispute_open(order, now, window)):
        actions.remove("dispute")  # 提出异议: only within the rating window after hand-back
    rateable = order.status == "delivered" or _rated_after_end(order, events, now, window)
    if principal.role == "resident" and order.status != "delivered" and rateable:
        actions.append("rate")  # 好差评全覆盖: a refusal or a termination is rated too
    if principal.role in ("agent", "dispatcher") and rateable:
        actions.append("rating_card")  # a paper rating card the resident signed (评价卡)
    if principal.role == "agent" and order.status in RUNNING and version.kind in TRACKED_KINDS:
        actions.append("progress")  # 上报件, 联办件: each step of the journey
    if principal.role == "agent" and order.status in OPEN:
        actions.append("green_channel")  # confirm or withdraw the flag, with a reason
    if order.status == "accepted" and not gaps(order):  # only 容缺 materials follow later
        actions = [a for a in actions if a != "supplement"]
    if principal.role == "agent" and is_overdue(order, now) and not order.delay_explanation:
        actions = [a for a in actions if a != "complete"] + ["explain_delay"]
    if principal.role == "dispatcher" and order.agent_id and order.status in OPEN:
        actions = [a for a in actions if a != "assign"]  # a disputed order with its agent
        actions.append("reassign")
    return [URL_SEGMENTS.get(a, a.replace("_", "-")) for a in actions]


def _rated_after_end(
    order: OrderRow, events: Sequence[Any], now: datetime, window: timedelta | None
) -> bool:
    """May the resident rate this order that ended without being carried through: refused,
    or terminated by staff (not withdrawn), within the window, not yet rated."""
    if window is None or order.ended_at is None or now >= order.ended_at + window:
        return False
    actions = [e.action for e in events]
    if "rate" in actions:
        return False
    ended_by = next((e.action for e in reversed(events) if e.to_status == order.status), None)
    return unserved_outcome_of(order.status, ended_by) is not None


def order_detail(
    session: Session, ctx: Context, principal: Principal, order_id: int, *, scoped: bool = True
) -> outputs.OrderDetail:
    """The order as `principal` sees it. `scoped=False` only right after a move the caller
    was allowed to make: an agent of another village who declines is answered with the
    order they just handed back, though it is no longer theirs to see."""
    conn = connection_of(session)  # Core statements: the ORM session's execute costs more
    order = (
        order_in_scope(session, principal, order_id)
        if scoped
        else ORDER_BY_ID.one(conn, {"id": order_id})
    )
    version = guide_version(session, ctx, order.item_version_id)
    item_code = _item_code(session, ctx, order.item_id)
    events = EVENTS_OF_ORDER.rows(conn, {"order_id": order.id})
    agent = AGENT_CONTACT.one_or_none(conn, {"id": order.agent_id}) if order.agent_id else None
    first = order.first_contact_id
    first_contact = (
        (agent if first == order.agent_id else AGENT_CONTACT.one(conn, {"id": first}))
        if first
        else None
    )
    calendar = work_calendar(session, ctx) if order.status == "accepted" else None
    parts = parts_of(session, ctx, order, version)
    return build_detail(
        ctx,
        principal,
        order,
        version,
        item_code,
        events,
        agent,
        calendar,
        first_contact,
        parts,
        _durations(session, order),
    )


def _durations(session: Session, order: OrderRow) -> dict[int, int | None]:
    """The voice notes' lengths, read when they completed: no query without voice notes."""
    ids = order.voice_note_upload_ids or []
    if not ids:
        return {}
    rows = connection_of(session).execute(VOICE_NOTES, {"ids": sorted(set(ids))})
    return {row.id: row.duration_ms for row in rows}


def new_order_detail(
    session: Session, ctx: Context, principal: Principal, new: Submitted
) -> outputs.OrderDetail:
    """The detail of an order just written, from the values written (no read back)."""
    assert new.values is not None, "an idempotent retry reads the order as it is now"
    order = SimpleNamespace(**({column.key: None for column in ORDERS.c} | new.values))
    names = {principal.account_id: new.actor_name}
    events = [
        SimpleNamespace(**e, id=None, actor_name=names.get(e["actor_id"]), actor_phone=None)
        for e in new.events
    ]
    version = guide_version(session, ctx, new.values["item_version_id"])
    item_code = _item_code(session, ctx, new.values["item_id"])
    first_contact = new.agent if order.first_contact_id else None
    parts = parts_of(session, ctx, order, version)
    return build_detail(
        ctx,
        principal,
        order,
        version,
        item_code,
        events,
        new.agent,
        None,
        first_contact,
        parts,
        _durations(session, order),
    )


def _item_code(session: Session, ctx: Context, item_id: int) -> str:
    codes: dict[int, str] = ctx.caches.setdefault("item_codes", {})
    code = codes.get(item_id)
    if code is None:  # codes never change once given
        code = codes[item_id] = session.execute(ITEM_CODE, {"id": item_id}).scalar_one()
    return code


def _accepted_data(event: Row[Any] | SimpleNamespace | None) -> dict[str, Any]:
    return (event.data or {}) if event is not None else {}


def _entrustment(order: OrderRow) -> outputs.EntrustmentState:
    signed = order.entrustment_signature
    return outputs.EntrustmentState(
        upload_ids=list(order.entrustment_upload_ids or []),
        signed=bool(signed),
        signed_at=datetime.fromisoformat(signed["signedAt"]) if signed else None,
        upload_id=signed["uploadId"] if signed else None,
        sha256=signed["sha256"] if signed else None,
    )


def _contact(row: Any | None) -> outputs.AgentContact | None:
    return (
        outputs.AgentContact(id=row.id, name=row.name, work_phone=row.work_phone) if row else None
    )


def build_detail(
    ctx: Context,
    principal: Principal,
    order: OrderRow,
    version: ItemVersion,
    item_code: str,
    events: Sequence[Row[Any] | SimpleNamespace],
    # Rows of AGENT_CONTACT (id, name, work_phone), or Submitted.agent: a typed Row is
    # spelt Row[tuple[...]] under SQLAlchemy 2.0 and Row[...] under 2.1.
    agent: Any | None,
    calendar: WorkCalendar | None,
    first_contact: Any | None = None,
    parts: Sequence[dict[str, Any]] = (),
    durations: dict[int, int | None] | None = None,
) -> outputs.OrderDetail:
    now = ctx.now()
    remaining = None
    if order.status == "accepted" and order.due_at is not None and calendar is not None:
        remaining = calendar.remaining_working_days(order.due_at, now)
    elif order.status == "on_hold":
        remaining = order.remaining_days
    # 受理单 is issued at acceptance: it names the agent who accepted (the accept event's
    # actor), not whoever handles the order after a re-assignment, and what was owed then.
    accepted = next((e for e in reversed(events) if e.action == "accept"), None)
    return outputs.OrderDetail(
        id=order.id,
        number=order.number,
        item_code=item_code,
        item_name=version.name,
        item_version=version.version,
        kind=version.kind,
        kind_name=KIND_NAMES[version.kind],
        status=order.status,
        status_name=STATUS_NAMES[order.status],
        channel=order.channel,
        green_channel=order.green_channel,
        green_channel_source=order.green_channel_source,
        home_visit=order.home_visit,
        appointment_at=order.appointment_at,
        note=order.note,
        submitted_at=order.submitted_at,
        accepted_at=order.accepted_at,
        supplement_rounds=order.supplement_rounds or 0,
        dispute_rounds=order.dispute_rounds or 0,
        home_village_id=order.home_village_id,
        progress=[
            outputs.ProgressPart(
                department=p.get("department"),
                name=p["name"],
                step=p.get("step"),
                step_name=STEP_NAMES.get(p.get("step") or "", "未开始"),
                on=date.fromisoformat(p["on"]) if p.get("on") else None,
            )
            for p in parts
        ],
        promised_days=order.promised_days,
        due_at=order.due_at,
        due_provisional=order.due_provisional,
        remaining_working_days=remaining,
        overdue=is_overdue(order, now),
        delay_explanation=order.delay_explanation,
        outcome=order.outcome,
        outcome_note=order.outcome_note,
        fees_collected_fen=order.fees_collected_fen,
        completed_at=order.completed_at,
        delivered_at=order.delivered_at,
        delivery_method=order.delivery_method,
        agent=_contact(agent),
        first_contact=_contact(first_contact),
        checklist=[
            outputs.ChecklistSlot(
                code=m["code"],
                name=m["name"],
                required=bool(m.get("required", True)),
                count=int(m.get("count", 1)),
                form=str(m.get("form", "original")),
                upload_ids=list(order.materials.get(m["code"], {}).get("uploads", [])),
                state=order.materials.get(m["code"], {}).get("state", "empty"),
                reason=order.materials.get(m["code"], {}).get("reason"),
                may_follow=bool(m.get("required", True)) and may_follow(version, m),
            )
            for m in version.materials
        ],
        entrustment=_entrustment(order),
        voice_notes=[
            outputs.VoiceNote(
                upload_id=i,
                duration_ms=(ms := (durations or {}).get(i)),
                duration_seconds=max(1, (ms + 500) // 1000) if ms is not None else None,
            )
            for i in order.voice_note_upload_ids or []
        ],
        acceptance_slip=outputs.AcceptanceSlip(
            number=order.number,
            item_name=version.name,
            accepted_at=order.accepted_at,
            due_at=order.due_at,
            due_provisional=order.due_provisional,
            promised_days=order.promised_days,
            fees_fen=version.fee_fen,
            fee_basis=version.fee_basis,
            handler_name=accepted.actor_name if accepted else None,
            handler_phone=accepted.actor_phone if accepted else None,
            materials_to_follow=[g["name"] for g in _accepted_data(accepted).get("gaps", [])],
        )
        if order.accepted_at
        else None,
        timeline=[
            outputs.TimelineEntry(
                at=e.at,
                action=e.action,
                action_name=ACTION_NAMES.get(e.action, e.action),
                actor_role=e.actor_role,
                actor_name=e.actor_name,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
                data=e.data,
            )
            for e in events
        ],
        next_actions=cast(
            "list[OrderEventAction]",
            next_actions(
                order,
                version,
                principal,
                now,
                events,
                timedelta(days=ctx.settings.ratings.window_days),
            ),
        ),
    )
