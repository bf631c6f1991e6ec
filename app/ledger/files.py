"""The monthly ledger (台账): each village's record of a month and each town's compilation,
as .xlsx in object storage, listed with short download links.

Villages hand in their record by the 7th of the next month, the town centre compiles by the
10th (each to the end of that day, in DAIBAN_TIMEZONE): until then a month's ledger is
provisional (未定稿) and every build makes it again from the data as it stands; the first
build after the deadline makes the final file and freezes it as version 1. A frozen
version's row and file never change: a correction after that adds version 2, 3, … with its
reason, beside the first (`correct_ledger`, audited as `ledger.correct`).

The ledgers job runs every night and at start: it builds last month's ledgers that are
missing, rebuilds every provisional one (of any month) and freezes those past their
deadline, so a late or missed run catches up. Two workers at once are harmless: each file's
key names its version and the hash of its bytes, so no key is ever written with two
contents, and a row changes only by compare-and-set on the file it pointed to; the loser's
file is deleted."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import anyio
import msgspec
from sqlalchemy import Boolean, and_, bindparam, select, text, update
from sqlalchemy.orm import Session

from app import audit, errors
from app.context import Context
from app.job_runs import JobIncomplete, recorded
from app.ledger import workbook
from app.ledger.figures import Filters, figures
from app.models import Ledger, Order, Rating, Region
from app.notifications.delivery import WORKER
from app.regions.service import within
from app.security.tokens import Principal

log = logging.getLogger("daiban.ledger")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The last day (to its end) on which a month's ledger of each level is still provisional.
DEADLINE_DAY = {"village": 7, "town": 10}
# Ledgers built side by side by one run: while one reads the database another writes its
# workbook (in a thread) or its file. Each read is a long read, and on PostgreSQL long
# reads take turns for half the read pool (app/db.py), so more would only queue there.
BUILDS_AT_ONCE = 4
INSERT = text(
    "INSERT INTO ledgers (region_id, level, month, version, provisional, object_key, size, "
    "sha256, orders, built_at, frozen_at, reason, built_by) "
    "VALUES (:region_id, :level, :month, :version, :provisional, :object_key, :size, "
    ":sha256, :orders, :built_at, :frozen_at, :reason, :built_by) "
    "ON CONFLICT (region_id, month, version) DO NOTHING"
).bindparams(
    bindparam("month", type_=Ledger.month.type),
    bindparam("provisional", type_=Boolean()),
    bindparam("built_at", type_=Ledger.built_at.type),
    bindparam("frozen_at", type_=Ledger.frozen_at.type),
)

LedgerNotFinal = errors.error(
    "ledger_not_final", 409, "该月台账尚未定稿,定稿前每晚按最新数据重新生成,无需更正"
)
LedgerChanged = errors.error("ledger_changed", 409, "台账刚被他人更正,请刷新后再看")


class LedgerFailure(msgspec.Struct, rename="camel", kw_only=True):
    region_id: int
    region_name: str
    reason: str  # what went wrong, for the county's IT staff


class LedgerBuild(msgspec.Struct, rename="camel", kw_only=True):
    """What a build did: ledgers built (new, provisional ones made again, or final ones
    frozen), and each region whose ledger could not be built (a later build, or the nightly
    job, tries those again)."""

    month: str  # yyyy-mm
    built: int
    failed: list[LedgerFailure]


class LedgerFile(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    region_id: int
    region_name: str
    level: str
    month: str  # yyyy-mm
    version: int  # 1, then one more for each correction
    provisional: bool  # 未定稿: made again every night until `deadline`
    deadline: datetime  # the end of the 7th (village) or the 10th (town) of the next month
    frozen_at: datetime | None  # when this version became final; None while provisional
    reason: str | None  # why this version was made (corrections only)
    orders: int
    size: int
    sha256: str
    built_at: datetime
    url: str | None = None  # a short-lived download link


def previous_month(day: date) -> date:
    first = day.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


def month_bounds(ctx: Context, month: date) -> tuple[datetime, datetime]:
    zone = ctx.settings.zone
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (
        datetime.combine(month, time.min, tzinfo=zone),
        datetime.combine(following, time.min, tzinfo=zone),
    )


def deadline(ctx: Context, level: str, month: date) -> datetime:
    """When a month's ledger of this level becomes final: the end of the 7th (a village's)
    or the 10th (a town's) of the next month, local time."""
    _, following = month_bounds(ctx, month)
    last = following.date().replace(day=DEADLINE_DAY[level])
    return datetime.combine(last + timedelta(days=1), time.min, tzinfo=ctx.settings.zone)


def _final_day(ctx: Context, level: str, month: date) -> date:
    """The last day (the 7th or the 10th of the next month) the ledger is provisional."""
    return deadline(ctx, level, month).date() - timedelta(days=1)


def _at(ctx: Context, moment: datetime) -> str:
    return f"{moment.astimezone(ctx.settings.zone):%Y-%m-%d %H:%M}"


def object_key(code: str, month: date, version: int, data: bytes, *, provisional: bool) -> str:
    """ledgers/2026-10/370406103001_2026-10_v2_<12 hex of the sha256>.xlsx: a key is only
    ever written with one content, so no version's file can overwrite another's."""
    state = "_provisional" if provisional else ""
    digest = hashlib.sha256(data).hexdigest()[:12]
    return f"ledgers/{month:%Y-%m}/{code}_{month:%Y-%m}_v{version}{state}_{digest}.xlsx"


def _contents(
    session: Session, ctx: Context, region: Region, month: date, state: str, *, provisional: bool
) -> tuple[list[list[Any]], workbook.Sheets]:
    """The month's workbook as it stands now; `state` is its second line (未定稿, 定稿 or
    更正, with when it was made)."""
    low, high = month_bounds(ctx, month)
    last = (high - timedelta(days=1)).date()
    if region.level == "village":
        scope = Principal(0, "dispatcher", region.town_id)
        filters = Filters(village_id=region.id)
        of_region = Order.village_id == region.id
        # through the town's index of ratings (ix_ratings_town): a village has none of its own
        rated = and_(Rating.town_id == region.town_id, Rating.village_id == region.id)
    else:
        scope, filters = Principal(0, "dispatcher", region.id), Filters()
        of_region, rated = Order.town_id == region.id, Rating.town_id == region.id
    title = f"{region.name} {month:%Y年%m月} 帮办代办台账" + ("(未定稿)" if provisional else "")
    summary = workbook.summary_rows(
        title, figures(session, ctx, scope, month, last, filters), state=state
    )
    sheets = workbook.Sheets(
        register=workbook.register_rows(
            session, ctx, [of_region, Order.submitted_at >= low, Order.submitted_at < high]
        ),
        log=workbook.log_rows(session, ctx, [of_region], low, high),
        ratings=workbook.rating_rows(
            session, ctx, [rated, Rating.rated_at >= low, Rating.rated_at < high]
        ),
    )
    return summary, sheets


def _latest(session: Session, region_id: int, month: date) -> Ledger | None:
    return session.scalar(
        select(Ledger)
        .where(Ledger.region_id == region_id, Ledger.month == month)
        .order_by(Ledger.version.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class _Draft:
    """What a build read: the region, the row it replaces (if any), the workbook's rows."""

    region_id: int
    level: str
    code: str
    name: str
    version: int
    provisional: bool
    replaces: tuple[int, str] | None  # the provisional row's id and object key
    summary: list[list[Any]]
    sheets: workbook.Sheets


async def _write_file(ctx: Context, draft: _Draft, month: date) -> tuple[str, dict[str, Any]]:
    data = await anyio.to_thread.run_sync(workbook.build_workbook, draft.summary, draft.sheets)
    key = object_key(draft.code, month, draft.version, data, provisional=draft.provisional)
    await ctx.store.write(key, data, XLSX)
    values = {
        "region_id": draft.region_id,
        "level": draft.level,
        "month": month,
        "version": draft.version,
        "provisional": draft.provisional,
        "object_key": key,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "orders": len(draft.sheets.register),
        "built_at": ctx.now(),
    }
    return key, values


async def _discard(ctx: Context, key: str) -> None:
    """A file no row points to (a replaced provisional one, or a race's loser): removed,
    best effort (a file left behind is only clutter)."""
    try:
        await ctx.store.delete(key)
    except Exception:
        log.warning("ledger file not removed", extra={"key": key}, exc_info=True)


async def build_ledger(
    ctx: Context, region_id: int, month: date, *, built_by: int | None = None
) -> bool:
    """Build one region's ledger of `month` unless a frozen version exists: provisional
    before the deadline (made again on every build), final and frozen as version 1 from the
    first build after it. True when a file was built and recorded."""
    now = ctx.now()

    def read(session: Session) -> _Draft | None:
        latest = _latest(session, region_id, month)
        if latest is not None and not latest.provisional:
            return None  # frozen: never built again (a correction adds a version)
        region = session.get(Region, region_id)
        assert region is not None
        provisional = now < deadline(ctx, region.level, month)
        if provisional:
            day = _final_day(ctx, region.level, month)
            state = f"未定稿(截至 {_at(ctx, now)} 生成,{day.month}月{day.day}日定稿)"
        else:
            state = f"定稿 第1版({_at(ctx, now)} 生成)"
        summary, sheets = _contents(session, ctx, region, month, state, provisional=provisional)
        replaces = (latest.id, latest.object_key) if latest is not None else None
        return _Draft(
            region_id=region.id,
            level=region.level,
            code=region.code,
            name=region.name,
            version=1,
            provisional=provisional,
            replaces=replaces,
            summary=summary,
            sheets=sheets,
        )

    draft = await ctx.db.run_long_read(read)
    if draft is None:
        return False
    key, values = await _write_file(ctx, draft, month)
    values |= {
        "frozen_at": None if draft.provisional else values["built_at"],
        "reason": None,
        "built_by": built_by,
    }

    def record(session: Session) -> str | None:
        """None when this build's row was kept; else the key the row points to now."""
        if draft.replaces is None:
            done = session.execute(INSERT, values).rowcount == 1  # type: ignore[attr-defined]
        else:
            row_id, previous = draft.replaces
            changed = session.execute(
                update(Ledger)
                .where(
                    Ledger.id == row_id,
                    Ledger.provisional.is_(True),
                    Ledger.object_key == previous,
                )
                .values({k: v for k, v in values.items() if k not in ("region_id", "month")})
                .execution_options(synchronize_session=False)
            )
            done = changed.rowcount == 1  # type: ignore[attr-defined]
        if done:
            return None
        current = session.scalar(
            select(Ledger.object_key).where(
                Ledger.region_id == draft.region_id, Ledger.month == month, Ledger.version == 1
            )
        )
        return current or ""

    other = await ctx.db.run_write(record)
    if other is None:
        if draft.replaces is not None and draft.replaces[1] != key:
            await _discard(ctx, draft.replaces[1])
        return True
    if other != key:  # another worker built it at the same moment: its file stands
        await _discard(ctx, key)
    return False


async def build_missing(
    ctx: Context, month: date | None = None, *, built_by: int | None = None
) -> LedgerBuild:
    """Every village's and town's ledger of `month` (default: last month) that is missing
    or still provisional: villages first, then the towns that compile them, BUILDS_AT_ONCE
    at a time. A region that fails is reported and does not stop the others; nothing of it
    is kept, so a later build makes it whole."""
    month = month or previous_month(ctx.today())

    def open_regions(session: Session) -> list[tuple[int, str, str]]:
        frozen = select(Ledger.region_id).where(
            Ledger.month == month, Ledger.provisional.is_(False)
        )
        rows = session.execute(
            select(Region.id, Region.name, Region.level)
            .where(Region.level.in_(("village", "town")), Region.id.not_in(frozen))
            .order_by(Region.id)
        ).all()
        return [(region_id, name, level) for region_id, name, level in rows]

    built, failed = 0, []
    turns = asyncio.Semaphore(BUILDS_AT_ONCE)

    async def build(region_id: int, name: str) -> None:
        nonlocal built
        async with turns:
            try:
                done = await build_ledger(ctx, region_id, month, built_by=built_by)
            except Exception as exc:
                log.exception("ledger failed", extra={"region": region_id, "month": str(month)})
                reason = f"{type(exc).__name__}: {exc}"[:300]
                failed.append(LedgerFailure(region_id=region_id, region_name=name, reason=reason))
            else:
                built += done  # (not `built += await …`: that reads `built` before the wait)

    regions = await ctx.db.run_read(open_regions)
    for level in ("village", "town"):
        async with asyncio.TaskGroup() as group:
            for region_id, name, of_level in regions:
                if of_level == level:
                    group.create_task(build(region_id, name))
    failed.sort(key=lambda f: f.region_id)
    return LedgerBuild(month=f"{month:%Y-%m}", built=built, failed=failed)


def open_months(session: Session, today: date) -> list[date]:
    """The months the nightly run builds: last month, and every month with a provisional
    ledger (one an admin built early, or one whose deadline passed while no run ran)."""
    provisional = session.scalars(
        select(Ledger.month).where(Ledger.provisional.is_(True)).distinct()
    ).all()
    return sorted({previous_month(today), *provisional})


def _failures(outcomes: list[LedgerBuild]) -> None:
    failed = [f for o in outcomes for f in o.failed]
    if failed:
        names = "、".join(f"{f.region_name}({f.reason})" for f in failed[:20])
        built = sum(o.built for o in outcomes)
        raise JobIncomplete(built, f"{len(failed)} 份台账未能生成: {names}")


async def build_recorded(
    ctx: Context, month: date, *, worker: str = WORKER, built_by: int | None = None
) -> LedgerBuild | None:
    """build_missing of one month as a recorded run of the "ledgers" job (on /admin/jobs),
    started by an admin; failed regions make the run's error. None when the run failed
    before it could say what it did (logged and recorded)."""
    outcome: list[LedgerBuild] = []

    async def work() -> int:
        result = await build_missing(ctx, month, built_by=built_by)
        outcome.append(result)
        _failures(outcome)
        return result.built

    await recorded(ctx, "ledgers", work, worker=worker)
    return outcome[0] if outcome else None


async def build_nightly(ctx: Context) -> int:
    """The ledgers job: build_missing of every open month (`open_months`), recorded; the
    files built, or 0 when the run failed before it could say."""
    outcomes: list[LedgerBuild] = []

    async def work() -> int:
        for month in await ctx.db.run_read(lambda s: open_months(s, ctx.today())):
            outcomes.append(await build_missing(ctx, month))
        _failures(outcomes)
        return sum(o.built for o in outcomes)

    await recorded(ctx, "ledgers", work)
    return sum(o.built for o in outcomes)


async def correct_ledger(
    ctx: Context, principal: Principal, region_id: int, month: date, reason: str
) -> LedgerFile:
    """A correction of a frozen month (更正): the region's ledger made again from the data
    as it stands now (the month's orders, their timelines and ratings, each order's status
    and result as of this moment), kept as the next version beside the earlier ones, with
    the reason and who made it; audited. Versions already there never change."""
    reason = reason.strip()
    if not reason:
        raise errors.InvalidInput(errors=[{"field": "reason", "message": "请写明更正原因"}])
    now = ctx.now()

    def read(session: Session) -> _Draft:
        region = session.scalar(
            select(Region).where(
                Region.id == region_id,
                Region.level.in_(("village", "town")),
                within(principal.region_id),
            )
        )
        latest = _latest(session, region_id, month) if region is not None else None
        if region is None or latest is None:
            raise errors.NotFound("没有找到该月台账")
        if latest.provisional:
            day = _final_day(ctx, region.level, month)
            raise LedgerNotFinal(f"{month:%Y年%m月}台账于{day.month}月{day.day}日24:00后定稿")
        version = latest.version + 1
        first = session.scalar(
            select(Ledger.frozen_at).where(
                Ledger.region_id == region_id, Ledger.month == month, Ledger.version == 1
            )
        )
        frozen = f";第1版定稿于 {_at(ctx, first)}" if first else ""
        state = f"更正 第{version}版({_at(ctx, now)} 生成;更正原因:{reason}{frozen})"
        summary, sheets = _contents(session, ctx, region, month, state, provisional=False)
        return _Draft(
            region_id=region.id,
            level=region.level,
            code=region.code,
            name=region.name,
            version=version,
            provisional=False,
            replaces=None,
            summary=summary,
            sheets=sheets,
        )

    draft = await ctx.db.run_long_read(read)
    key, values = await _write_file(ctx, draft, month)
    values |= {"frozen_at": values["built_at"], "reason": reason, "built_by": principal.account_id}

    def record(session: Session) -> LedgerFile | None:
        if session.execute(INSERT, values).rowcount != 1:  # type: ignore[attr-defined]
            return None
        audit.record(
            session,
            principal,
            "ledger.correct",
            f"ledger:{draft.code}:{month:%Y-%m}:v{draft.version}",
            now,
            {"region": draft.name, "month": f"{month:%Y-%m}", "version": draft.version},
            purpose=reason,
        )
        made = session.scalar(
            select(Ledger).where(
                Ledger.region_id == draft.region_id,
                Ledger.month == month,
                Ledger.version == draft.version,
            )
        )
        assert made is not None
        return _file(ctx, made, draft.name)

    made = await ctx.db.run_write(record)
    if made is None:  # another admin's correction took this version number first
        await _discard(ctx, key)
        raise LedgerChanged()
    return made


def ledger_files(session: Session, principal: Principal) -> list[tuple[Ledger, str]]:
    """A dispatcher's town and its villages; an admin's whole district; newest month first,
    each region's versions newest first."""
    return [
        (ledger, name)
        for ledger, name in session.execute(
            select(Ledger, Region.name)
            .join(Region, Region.id == Ledger.region_id)
            .where(within(principal.region_id))
            .order_by(Ledger.month.desc(), Ledger.level.desc(), Region.code, Ledger.version.desc())
            .limit(500)
        )
    ]


def _file(ctx: Context, ledger: Ledger, name: str) -> LedgerFile:
    ttl = timedelta(seconds=ctx.settings.storage.download_url_ttl_seconds)
    return LedgerFile(
        id=ledger.id,
        region_id=ledger.region_id,
        region_name=name,
        level=ledger.level,
        month=f"{ledger.month:%Y-%m}",
        version=ledger.version,
        provisional=ledger.provisional,
        deadline=deadline(ctx, ledger.level, ledger.month).astimezone(UTC),
        frozen_at=ledger.frozen_at,
        reason=ledger.reason,
        orders=ledger.orders,
        size=ledger.size,
        sha256=ledger.sha256,
        built_at=ledger.built_at,
        url=ctx.store.presign_download(ledger.object_key, ttl, ctx.now()),
    )


async def list_ledgers(ctx: Context, principal: Principal) -> list[LedgerFile]:
    return await ctx.db.run_read(
        lambda s: [_file(ctx, ledger, name) for ledger, name in ledger_files(s, principal)]
    )


def month_of(value: str) -> date:
    """A month written 2026-11, in 2000–2099 like every date the API takes."""
    try:
        month = datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        month = None
    if month is None or len(value) != 7 or not 2000 <= month.year <= 2099:
        raise errors.InvalidInput(errors=[{"field": "month", "message": "月份应写作 2026-11"}])
    return month
