"""One-tap submission (委托): every check in one statement, then the order, its number, its
photos, where it goes (the village's A or B agent, or the town's pool) and its first events."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import msgspec
from sqlalchemy import BigInteger, Date, Sequence, bindparam, exists, func, insert, select, text
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models import OrderNumberDay
from app.models.orders import ORDER_NUMBER_SEQUENCE
from app.models.tables import ACCOUNTS, ENABLED, ITEMS, ORDERS, REGIONS, table_of
from app.notifications import reminders
from app.orders import moves, notices
from app.orders.assignment import Dispatch, choose_agent
from app.orders.progress import TRACKED_KINDS
from app.orders.records import (
    AGENT_CONTACT,
    INSERT_EVENT,
    VOICE_FIELD,
    IdempotencyConflict,
    ItemNotOnline,
    ProfileIncomplete,
    check_materials,
    claim_uploads,
    event_values,
    guide_version,
)
from app.security.identity import age_on, birth_date
from app.security.tokens import Principal
from app.statements import DriverStatement

TOWNS = REGIONS.alias("towns")
NUMBER_DAYS = table_of(OrderNumberDay)
NUMBER_SEQUENCE = Sequence(ORDER_NUMBER_SEQUENCE)  # PostgreSQL: migration 0032
MAX_DAILY_SEQUENCE = 999_999  # the six digits of an order number's daily part
OrderNumbersExhausted = errors.error(
    "order_numbers_exhausted", 503, "今日办件编号已用完,请明天再提交"
)
MAX_APPOINTMENT_AHEAD = timedelta(days=90)


def station_outside() -> errors.DomainError:
    return errors.InvalidInput(
        errors=[{"field": "stationId", "message": "请选择本区的村(社区)便民服务站"}]
    )


MAX_VOICE_NOTES = 3
# The material slot the resident may leave empty at submission, to sign it on the phone.
SIGNED_ON_PHONE = frozenset({"entrustment"})

# Everything a submission checks before writing, in one statement: an earlier order with
# the same Idempotency-Key, the resident's profile and village (an agent entering an order
# gives their own village), the item, whether the village offers it, and whether the town
# dispatches by itself; on PostgreSQL also the order's number (`next_number`).
# The earlier order is found through the index of keys (ix_orders_idempotency). The
# resident is compared through coalesce (never NULL there), which no index led by the
# resident can serve: a bare comparison let PostgreSQL choose ix_orders_resident when its
# statistics expected the resident to have few orders, and read every order of the
# resident to find the key (the resident of bench/orders.py had thousands: 2.5-2.9 ms of
# PostgreSQL's CPU a submission, 1.7-1.8 without; tests/orders/test_query_plans.py).
_SAME_KEY = (
    ORDERS.c.idempotency_key == bindparam("key"),
    func.coalesce(ORDERS.c.resident_id, 0) == bindparam("account"),
)
_CONTEXT = (
    select(
        select(ORDERS.c.id).where(*_SAME_KEY).scalar_subquery().label("existing_id"),
        select(ORDERS.c.request_hash).where(*_SAME_KEY).scalar_subquery().label("existing_hash"),
        ACCOUNTS.c.name,
        ACCOUNTS.c.phone_enc,
        ACCOUNTS.c.id_number_enc,
        ACCOUNTS.c.region_id.label("home_id"),
        REGIONS.c.id.label("village_id"),
        REGIONS.c.level,
        REGIONS.c.town_id,
        REGIONS.c.district_id,
        ITEMS.c.id.label("item_id"),
        ITEMS.c.current_version_id,
        ENABLED.c.item_id.label("enabled"),
        TOWNS.c.auto_dispatch,
    )
    .select_from(
        ACCOUNTS.outerjoin(
            REGIONS,
            (
                REGIONS.c.id
                == func.coalesce(bindparam("village", type_=BigInteger), ACCOUNTS.c.region_id)
            )
            & REGIONS.c.retired_at.is_(None),  # a retired village: choose again
        )
        .outerjoin(TOWNS, TOWNS.c.id == REGIONS.c.town_id)
        .outerjoin(ITEMS, (ITEMS.c.code == bindparam("code")) & ITEMS.c.retired_at.is_(None))
        .outerjoin(
            ENABLED, (ENABLED.c.item_id == ITEMS.c.id) & (ENABLED.c.region_id == REGIONS.c.id)
        )
    )
    .where(ACCOUNTS.c.id == bindparam("account"), ACCOUNTS.c.disabled_at.is_(None))
)
# PostgreSQL: the day's next number, a value of the sequence less the day's base (no row,
# and no value taken, while the day has no base).
_DAYS_NEXT = select(NUMBER_SEQUENCE.next_value() - NUMBER_DAYS.c.base).where(
    NUMBER_DAYS.c.day == bindparam("day", type_=Date)
)
# Taken by the check before writing, unless the key found an earlier order (a retry): NULL
# then, and when the day has no base yet.
_NUMBER = _DAYS_NEXT.where(~exists().where(*_SAME_KEY)).scalar_subquery().label("number")
SUBMISSION_CONTEXT = {
    "sqlite": DriverStatement(_CONTEXT),
    "postgresql": DriverStatement(_CONTEXT.add_columns(_NUMBER)),
}
INSERT_ORDER = DriverStatement(insert(ORDERS).returning(ORDERS.c.id))
# The village station's A and B agents who can log in, for automatic dispatch.
STATION_AGENTS = select(
    ACCOUNTS.c.id,
    ACCOUNTS.c.name,
    ACCOUNTS.c.work_phone,
    ACCOUNTS.c.post,
    ACCOUNTS.c.on_duty,
    ACCOUNTS.c.leave_until,
).where(
    ACCOUNTS.c.region_id == bindparam("village"),
    ACCOUNTS.c.role == "agent",
    ACCOUNTS.c.post.in_(("A", "B")),
    ACCOUNTS.c.disabled_at.is_(None),
    ACCOUNTS.c.openid.is_not(None),
)


@dataclass
class SubmitInput:
    item_code: str
    materials: dict[str, list[int]]
    idempotency_key: str
    note: str | None = None
    green_channel: bool = False
    home_visit: bool = False
    appointment_at: datetime | None = None
    entrustment_upload_ids: list[int] | None = None  # agent-entered orders only
    # 语音留言: the resident's voice notes (uploads of purpose voice), at most MAX_VOICE_NOTES
    voice_note_upload_ids: list[int] | None = None
    # The entrustment will be signed on the phone before 受理 (app/orders/entrustment.py):
    # its material slot may be empty now. Residents' own requests only.
    sign_entrustment: bool = False
    # 全区通办: another village station of the resident's district that is to serve them
    # (where they work, where family lives); None: their own village.
    station_id: int | None = None


@dataclass(frozen=True)
class Entry:
    """An order an agent enters for a resident (代为委托): whose it is and where it is handled."""

    resident_id: int
    village_id: int


def request_hash(data: SubmitInput) -> str:
    fields: dict[str, Any] = {
        "item": data.item_code,
        "materials": {k: sorted(v) for k, v in sorted(data.materials.items())},
        "note": data.note,
        "green": data.green_channel,
        "visit": data.home_visit,
        "appointment": data.appointment_at.isoformat() if data.appointment_at else None,
        "entrustment": sorted(data.entrustment_upload_ids or []),
    }
    # Later fields only when given, so a body without them hashes as it always did (a retry
    # across an upgrade still finds its order).
    if data.voice_note_upload_ids:
        fields["voice"] = sorted(data.voice_note_upload_ids)
    if data.sign_entrustment:
        fields["sign"] = True
    if data.station_id is not None:
        fields["station"] = data.station_id
    return hashlib.sha256(msgspec.json.encode(fields)).hexdigest()


@dataclass
class Submitted:
    """A submission's outcome: the order id and, when it is new, what was written, so the
    answer can be built without reading it back (None on an idempotent retry)."""

    order_id: int
    values: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    actor_name: str | None = None
    agent: Any | None = None  # the agent it went to: id, name, work_phone


def _green_channel(
    ctx: Context, declared: bool, id_number_enc: str, now: datetime
) -> tuple[bool, str | None]:
    """绿色通道: as declared, or from the age by the birth date in the ID number on the
    resident's profile (DAIBAN_ORDERS_GREEN_CHANNEL_AGE; the number is decrypted here only
    to read the birth date, which is not kept)."""
    if declared:
        return True, "declared"
    age_from = ctx.settings.orders.green_channel_age
    if age_from:
        id_number = ctx.cipher.decrypt(id_number_enc, context="id_number")
        if age_on(birth_date(id_number), now.astimezone(ctx.settings.zone).date()) >= age_from:
            return True, "age"
    return False, None


def submit(
    session: Session,
    ctx: Context,
    principal: Principal,
    data: SubmitInput,
    entry: Entry | None = None,
) -> Submitted:
    """Submit a request for the resident, or an agent's `entry` for one (the same order
    again on a retry), and dispatch it."""
    digest = request_hash(data)
    resident_id = entry.resident_id if entry else principal.account_id
    now = ctx.now()
    day = now.astimezone(ctx.settings.zone).date()  # the business date of its number
    # Core statements straight on the transaction's connection: the ORM session's execute
    # costs more than SQLite takes to run them.
    conn = session.connection()
    found = SUBMISSION_CONTEXT[conn.dialect.name].one_or_none(
        conn,
        {
            "account": resident_id,
            "village": entry.village_id if entry else data.station_id,
            "key": data.idempotency_key,
            "code": data.item_code,
            "day": day,
        },
    )
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
    if entry is None and data.station_id is not None and found.level != "village":
        raise station_outside()  # no such village in service (a town, retired, unknown)
    if not all((name, found.phone_enc, found.id_number_enc, village_id, town_id, district_id)):
        raise ProfileIncomplete()
    home_village_id = _home_village(session, found, entry, data.station_id)
    if found.enabled is None or found.current_version_id is None:
        raise errors.NotFound("本村暂不能办理该事项")
    item_id, version_id = found.item_id, found.current_version_id
    version = guide_version(session, ctx, version_id)
    if version.mode == "consult" or version.in_person:
        raise ItemNotOnline()
    entrustment = data.entrustment_upload_ids
    files: dict[str, list[int]] = {"entrustmentUploadIds": entrustment} if entrustment else {}
    voice = data.voice_note_upload_ids or []
    if voice:
        files[VOICE_FIELD] = voice
    if entry is not None and data.sign_entrustment:
        raise errors.InvalidInput(
            errors=[{"field": "signEntrustment", "message": "代为委托请拍照上传群众签字的委托书"}]
        )
    materials = check_materials(
        session,
        principal,
        version,
        data.materials,
        at_submit=True,
        other_files=files,
        files_claimed_later=True,
        to_sign=SIGNED_ON_PHONE if data.sign_entrustment else frozenset(),
    )
    if len(set(voice)) > MAX_VOICE_NOTES:
        raise errors.InvalidInput(
            errors=[{"field": VOICE_FIELD, "message": f"语音留言最多{MAX_VOICE_NOTES}段"}]
        )
    _check_appointment(data.appointment_at, now)
    green, green_source = _green_channel(ctx, data.green_channel, found.id_number_enc, now)
    dispatch = _dispatch(session, ctx, principal, entry, found.auto_dispatch, village_id, now)
    agent = dispatch.agent
    # PostgreSQL's first statement took it (SQLite's row has no number: taken here).
    number = next_number(session, ctx, day, getattr(found, "number", None))
    # Plain Core statements on the table: SQLAlchemy caches their compiled form (the dialect
    # upsert constructs are compiled afresh every time, which cost more than the SQL).
    values = {
        "number": number,
        "resident_id": resident_id,
        "village_id": village_id,
        "town_id": town_id,
        "district_id": district_id,
        "item_id": item_id,
        "item_version_id": version.id,
        "status": "submitted",
        "channel": "agent" if entry else "mini_program",
        "green_channel": green,
        "green_channel_source": green_source,
        "home_visit": data.home_visit,
        "appointment_at": data.appointment_at.astimezone(UTC) if data.appointment_at else None,
        "priority": int(green or data.home_visit or data.appointment_at is not None),
        "note": data.note,
        "materials": materials,
        "agent_id": None,
        "assigned_at": None,
        # 首问负责: the agent who entered the order received it first.
        "first_contact_id": principal.account_id if entry else None,
        "home_village_id": home_village_id,
        "entrustment_upload_ids": data.entrustment_upload_ids,
        "voice_note_upload_ids": voice or None,
        "idempotency_key": data.idempotency_key,
        "request_hash": digest,
        "submitted_at": now,
        "promised_days": version.promised_days,
        "due_provisional": False,
        "fees_collected_fen": 0,
        "supplement_rounds": 0,
        # 上报件, 联办件: their steps to come (app/orders/progress.py); the board finds them.
        "progress": {"parts": []} if version.kind in TRACKED_KINDS else None,
        "updated_at": now,
    }
    # An agent for it: the table's assignment by the system, applied before the insert.
    assignment = (
        moves.assign_on_submission(values, agent, dispatch.rule, dispatch.note, now)
        if agent
        else None
    )
    order_id = int(INSERT_ORDER.returned(conn, values))
    claim = {f"materials.{c}": ids for c, ids in data.materials.items()} | files
    claim_uploads(session, principal, order_id, claim)
    submitted = event_values(order_id, principal, now, "submit", None, "submitted", data.note)
    if assignment is not None:
        events = [submitted, assignment.event(order_id, now)]
    else:  # into the pool: an event, not a move (the order stays submitted)
        why, rule = dispatch.note, {"rule": dispatch.rule}
        pooled = event_values(order_id, None, now, "pool", "submitted", "submitted", why, rule)
        events = [submitted, pooled]
    INSERT_EVENT.many(conn, events)
    if assignment is not None:
        assignment.announce(session, ctx, order_id, version.name, now)
    else:
        written = SimpleNamespace(**values, id=order_id)
        notices.entered_pool(session, ctx, written, version.name, dispatch.note, now)
    if values["appointment_at"] is not None:
        reminders.before_appointment(session, ctx, order_id, values["appointment_at"], now)
    submitter_name = agent.name if entry and agent else name
    return Submitted(order_id, {**values, "id": order_id}, events, submitter_name, agent)


HOME_REGION = select(REGIONS.c.district_id).where(REGIONS.c.id == bindparam("id"))


def _home_village(
    session: Session, found: Any, entry: Entry | None, station_id: int | None
) -> int | None:
    """全区通办: the resident's own village when another station serves them, else None. A
    station the resident chooses is a village station of their own district (422 else)."""
    home = found.home_id
    if entry is None and station_id is not None:
        home_district = session.execute(HOME_REGION, {"id": home}).scalar_one_or_none()
        if found.district_id != home_district:
            raise station_outside()
    if home is None or home == found.village_id:
        return None
    return int(home)


def _check_appointment(at: datetime | None, now: datetime) -> None:
    if at is not None and not now < at <= now + MAX_APPOINTMENT_AHEAD:
        raise errors.InvalidInput(
            errors=[{"field": "appointmentAt", "message": "预约时间应在今后90天之内"}]
        )


def _dispatch(
    session: Session,
    ctx: Context,
    principal: Principal,
    entry: Entry | None,
    auto: bool | None,
    village_id: int,
    now: datetime,
) -> Dispatch:
    """An agent's entry stays with that agent; otherwise the town's rule decides."""
    if entry is not None:
        me = session.execute(AGENT_CONTACT.statement, {"id": principal.account_id}).one()
        return Dispatch("entered_by_agent", "代办员代为委托,由录入的代办员承办", me)
    return station_dispatch(session, ctx, auto, village_id)


def station_dispatch(
    session: Session, ctx: Context, auto: bool | None, village_id: int
) -> Dispatch:
    """Where a request for the village goes by its town's rule: the station's A agent on
    duty, else B (AB岗), else the town's pool; the pool when the town dispatches by hand."""
    station = session.execute(STATION_AGENTS, {"village": village_id}).all() if auto else []
    return choose_agent(bool(auto), station, ctx.today())


# SQLite: the day's counter, in the submission's own transaction.
NEXT_NUMBER = DriverStatement(
    text(
        "INSERT INTO order_number_counters (day, last) VALUES (:day, 1) "
        "ON CONFLICT (day) DO UPDATE SET last = order_number_counters.last + 1 RETURNING last"
    ).bindparams(bindparam("day", type_=Date))
)
# PostgreSQL: the day's base, where the sequence stands now — less the numbers a counter of
# the day gave before migration 0032, so that the day goes on from them.
START_DAY = DriverStatement(
    text(
        "INSERT INTO order_number_days (day, base) "
        "SELECT :day, CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END"
        " - coalesce((SELECT last FROM order_number_counters WHERE day = :day), 0) "
        "FROM order_number_seq s ON CONFLICT (day) DO NOTHING"
    ).bindparams(bindparam("day", type_=Date))
)
TAKE_NUMBER = DriverStatement(_DAYS_NEXT)


def next_number(session: Session, ctx: Context, day: date, taken: int | None = None) -> str:
    """DB + business date + a 6-digit daily sequence, unique across processes and
    increasing within the day: a number is greater than every number of its day whose
    submission had committed before it was taken.

    PostgreSQL: a value of `order_number_seq` less the day's base (`OrderNumberDay`),
    normally `taken` already by the submission's first statement. A sequence locks no row
    and is not rolled back: submissions never wait for each other's numbers, and a
    submission that fails after taking one leaves a gap. The day's first submission writes
    its base apart from its own transaction (`Database.apart`), so that the day's other
    first submissions wait for that statement alone. SQLite: the day's counter row, updated
    in the submission's own transaction — with one writer nothing waits behind it, and a
    failed submission's number rolls back with it (no gaps).

    The millionth order of a day is refused rather than given a 7-digit number no one
    expects, as is every later one of that day."""
    if taken is None:
        with ctx.db.apart(session) as conn:
            if ctx.db.is_sqlite:
                taken = int(NEXT_NUMBER.returned(conn, {"day": day}))
            else:
                START_DAY.rowcount(conn, {"day": day})
        if taken is None:
            taken = int(TAKE_NUMBER.one(session.connection(), {"day": day})[0])
    if taken > MAX_DAILY_SEQUENCE:
        raise OrderNumbersExhausted(
            f"{day:%Y年%m月%d日}的办件编号已用完({MAX_DAILY_SEQUENCE:,} 件),请明天再提交"
        )
    return f"DB{day:%Y%m%d}{taken:06d}"
