"""The monthly ledger (台账): each village's record of the previous month and each town's
compilation, as .xlsx in object storage, listed with short download links.

Villages report by the 7th of the month, the centre compiles by the 10th. The ledgers job runs
every night and at start, and builds whatever of last month is missing, so a late or
missed run catches up. Building twice (two workers) is harmless: the file's key is fixed
and the row is written once."""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime, time, timedelta
from typing import Any

import anyio
import msgspec
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from app import errors
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
INSERT = text(
    "INSERT INTO ledgers (region_id, level, month, object_key, size, sha256, orders, built_at) "
    "VALUES (:region_id, :level, :month, :object_key, :size, :sha256, :orders, :built_at) "
    "ON CONFLICT (region_id, month) DO NOTHING"
).bindparams(
    bindparam("month", type_=Ledger.month.type), bindparam("built_at", type_=Ledger.built_at.type)
)


class LedgerFailure(msgspec.Struct, rename="camel", kw_only=True):
    region_id: int
    region_name: str
    reason: str  # what went wrong, for the county's IT staff


class LedgerBuild(msgspec.Struct, rename="camel", kw_only=True):
    """What a build did: ledgers built, and each region whose ledger could not be built
    (a later build, or the nightly job, tries those again)."""

    month: str  # yyyy-mm
    built: int
    failed: list[LedgerFailure]


class LedgerFile(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    region_id: int
    region_name: str
    level: str
    month: str  # yyyy-mm
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


def _contents(
    session: Session, ctx: Context, region: Region, month: date
) -> tuple[list[list[Any]], workbook.Sheets]:
    low, high = month_bounds(ctx, month)
    last = (high - timedelta(days=1)).date()
    if region.level == "village":
        scope = Principal(0, "dispatcher", region.town_id)
        filters = Filters(village_id=region.id)
        of_region = Order.village_id == region.id
        rated = Rating.village_id == region.id
    else:
        scope, filters = Principal(0, "dispatcher", region.id), Filters()
        of_region, rated = Order.town_id == region.id, Rating.town_id == region.id
    title = f"{region.name} {month:%Y年%m月} 帮办代办台账"
    summary = workbook.summary_rows(title, figures(session, ctx, scope, month, last, filters))
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


async def build_ledger(ctx: Context, region_id: int, month: date) -> bool:
    """Build one region's ledger of `month` unless it exists; True when one was built."""

    def read(session: Session) -> tuple[Region, list[list[Any]], workbook.Sheets] | None:
        if session.scalar(
            select(Ledger.id).where(Ledger.region_id == region_id, Ledger.month == month)
        ):
            return None
        region = session.get(Region, region_id)
        assert region is not None
        return (region, *_contents(session, ctx, region, month))

    found = await ctx.db.run_long_read(read)
    if found is None:
        return False
    region, summary, sheets = found
    data = await anyio.to_thread.run_sync(workbook.build_workbook, summary, sheets)
    key = f"ledgers/{month:%Y-%m}/{region.code}.xlsx"
    await ctx.store.write(key, data, XLSX)
    values = {
        "region_id": region.id,
        "level": region.level,
        "month": month,
        "object_key": key,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "orders": len(sheets.register),
        "built_at": ctx.now(),
    }
    await ctx.db.run_write(lambda s: s.execute(INSERT, values))
    return True


async def build_missing(ctx: Context, month: date | None = None) -> LedgerBuild:
    """Every village's and town's ledger of `month` (default: last month) not yet built:
    villages first, then the towns that compile them. A region that fails is reported and
    does not stop the others; nothing of it is kept, so a later build makes it whole."""
    month = month or previous_month(ctx.today())

    def missing(session: Session) -> list[tuple[int, str]]:
        built = select(Ledger.region_id).where(Ledger.month == month)
        rows = session.execute(
            select(Region.id, Region.name)
            .where(Region.level.in_(("village", "town")), Region.id.not_in(built))
            .order_by(Region.level.desc(), Region.id)  # village before town
        ).all()
        return [(region_id, name) for region_id, name in rows]

    built, failed = 0, []
    for region_id, name in await ctx.db.run_read(missing):
        try:
            built += await build_ledger(ctx, region_id, month)
        except Exception as exc:
            log.exception("ledger failed", extra={"region": region_id, "month": str(month)})
            reason = f"{type(exc).__name__}: {exc}"[:300]
            failed.append(LedgerFailure(region_id=region_id, region_name=name, reason=reason))
    return LedgerBuild(month=f"{month:%Y-%m}", built=built, failed=failed)


async def build_recorded(
    ctx: Context, month: date | None = None, *, worker: str = WORKER
) -> LedgerBuild | None:
    """build_missing as a recorded run of the "ledgers" job (on /admin/jobs), whether the
    scheduler or an admin started it; failed regions make the run's error. None when the
    run failed before it could say what it did (logged and recorded)."""
    outcome: list[LedgerBuild] = []

    async def work() -> int:
        result = await build_missing(ctx, month)
        outcome.append(result)
        if result.failed:
            names = "、".join(f"{f.region_name}({f.reason})" for f in result.failed[:20])
            raise JobIncomplete(result.built, f"{len(result.failed)} 份台账未能生成: {names}")
        return result.built

    await recorded(ctx, "ledgers", work, worker=worker)
    return outcome[0] if outcome else None


def ledger_files(session: Session, principal: Principal) -> list[tuple[Ledger, str]]:
    """A dispatcher's town and its villages; an admin's whole district; newest month first."""
    return [
        (ledger, name)
        for ledger, name in session.execute(
            select(Ledger, Region.name)
            .join(Region, Region.id == Ledger.region_id)
            .where(within(principal.region_id))
            .order_by(Ledger.month.desc(), Ledger.level.desc(), Region.code)
            .limit(500)
        )
    ]


async def list_ledgers(ctx: Context, principal: Principal) -> list[LedgerFile]:
    rows = await ctx.db.run_read(lambda s: ledger_files(s, principal))
    ttl = timedelta(seconds=ctx.settings.storage.download_url_ttl_seconds)
    out = []
    for ledger, name in rows:
        out.append(
            LedgerFile(
                id=ledger.id,
                region_id=ledger.region_id,
                region_name=name,
                level=ledger.level,
                month=f"{ledger.month:%Y-%m}",
                orders=ledger.orders,
                size=ledger.size,
                sha256=ledger.sha256,
                built_at=ledger.built_at,
                url=ctx.store.presign_download(ledger.object_key, ttl, ctx.now()),
            )
        )
    return out


def month_of(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise errors.InvalidInput(
            errors=[{"field": "month", "message": "月份应写作 2026-11"}]
        ) from None
