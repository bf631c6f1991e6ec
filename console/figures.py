"""Figures for a chosen period, drawn so they are read at a glance (SVG made by the service:
no chart library, nothing from outside), the monthly ledgers and filtered exports.

A dispatcher sees their town, an admin their district: the figures, satisfaction and
exports are the API's own (app/ledger, app/ratings/stats) for the same caller."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template
from sqlalchemy.orm import Session

from app.accounts import staff
from app.accounts.console import ConsoleUser
from app.context import Context
from app.downloads import download_headers
from app.ledger import files as ledger_files
from app.ledger.export import ExportRequest, export_orders
from app.ledger.figures import Figures, Filters, figures
from app.periods import check_dates
from app.ratings import stats
from app.regions.service import managed_regions
from console.forms import optional_id, optional_status
from console.session import ctx_of

User = NamedDependency[ConsoleUser]
From = Annotated[date | None, QueryParameter(name="from")]
To = Annotated[date | None, QueryParameter(name="to")]


class Week(msgspec.Struct, kw_only=True):
    start: date
    end: date
    received: int
    completed: int


def _period(ctx: Context, start: date | None, end: date | None) -> tuple[date, date]:
    """The dates asked for, or this month so far."""
    today = ctx.today()
    start = start or today.replace(day=1)
    end = end or today
    check_dates(start, end)
    return start, end


def weeks(start: date, end: date) -> list[tuple[date, date]]:
    """Monday-to-Sunday weeks covering the period, the first and last cut to it (a period
    is at most a year, app/periods.py: 54 weeks at most)."""
    out: list[tuple[date, date]] = []
    day = start
    while day <= end:
        last = min(day + timedelta(days=6 - day.weekday()), end)
        out.append((day, last))
        day = last + timedelta(days=1)
    return out


def _read(
    session: Session, ctx: Context, user: ConsoleUser, start: date, end: date
) -> dict[str, Any]:
    principal, everything = user.principal, Filters()
    total: Figures = figures(session, ctx, principal, start, end, everything)
    series = []
    for first, last in weeks(start, end):
        week = figures(session, ctx, principal, first, last, everything)
        series.append(Week(start=first, end=last, received=week.received, completed=week.completed))
    places = [r for r in managed_regions(session, principal) if r.level == "village"]
    by_village = stats.satisfaction(session, ctx, principal, start, end, "village")
    by_agent = stats.satisfaction(session, ctx, principal, start, end, "agent")
    return {
        "total": total,
        "weeks": series,
        "peak": max([1, *(max(w.received, w.completed) for w in series)]),
        "villages": by_village,
        "agents": by_agent,
        "top_peak": max([1, *(i.count for i in total.top_items)]),
        "villages_to_pick": places,
        "agents_to_pick": staff.list_staff(session, ctx, principal, "agent"),
    }


@get("/figures", name="console_figures")
async def figures_page(
    request: Request[Any, Any, Any],
    user: User,
    start: From = None,
    end: To = None,
) -> Template:
    ctx = ctx_of(request)
    first, last = _period(ctx, start, end)
    found = await ctx.db.run_long_read(lambda s: _read(s, ctx, user, first, last), may_lag=True)
    ledgers = await ledger_files.list_ledgers(ctx, user.principal)
    return Template(
        template_name="figures.html",
        context={"user": user, "start": first, "end": last, "ledgers": ledgers, **found},
    )


@get("/figures/export", name="console_export")
async def export(
    request: Request[Any, Any, Any],
    user: User,
    start: From = None,
    end: To = None,
    status: FromQuery[str | None] = None,
    village: Annotated[str | None, QueryParameter(max_length=16)] = None,
    agent: Annotated[str | None, QueryParameter(max_length=16)] = None,
    unmasked: FromQuery[bool] = False,
    purpose: Annotated[str | None, QueryParameter(max_length=200)] = None,
) -> Response[bytes]:
    """The orders of the period as a spreadsheet, ID numbers and phones masked; an admin may
    have them in full for a stated purpose. Either way the export is audited."""
    ctx = ctx_of(request)
    first, last = _period(ctx, start, end)
    chosen = Filters(
        village_id=optional_id(village or "", "village"),
        agent_id=optional_id(agent or "", "agent"),
    )
    wanted = ExportRequest(
        first, last, chosen, optional_status(status), unmasked=unmasked, purpose=purpose
    )
    data = await export_orders(ctx, user.principal, wanted)
    name = f"办件清单_{first}_{last}.xlsx"
    return Response(
        content=data,
        media_type=ledger_files.XLSX,
        headers=download_headers(name),
    )
