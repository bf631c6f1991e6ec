"""On-demand exports of a filtered order list (.xlsx) for dispatchers and admins.

ID numbers and phones are masked; an admin may export them unmasked by stating a purpose,
which goes into the audit log with who, when and which filter. Every export is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import anyio
from sqlalchemy.orm import Session

from app import audit, errors
from app.context import Context
from app.ledger import workbook
from app.ledger.figures import Filters, scope_conditions
from app.models import Order, Region
from app.models.tables import ORDERS
from app.periods import period
from app.security.tokens import Principal


@dataclass(frozen=True)
class ExportRequest:
    start: date
    end: date
    filters: Filters
    status: str | None = None
    unmasked: bool = False
    purpose: str | None = None


def _rows(
    session: Session, ctx: Context, principal: Principal, request: ExportRequest
) -> list[list[object]]:
    if request.unmasked and principal.role != "admin":
        raise errors.Forbidden("只有管理员可以导出未脱敏的数据")
    purpose = (request.purpose or "").strip()
    if request.unmasked and len(purpose) < 4:
        raise errors.InvalidInput(
            errors=[{"field": "purpose", "message": "导出未脱敏数据须写明用途"}]
        )
    village = request.filters.village_id
    if village is not None:
        region = session.get(Region, village)
        owner = None
        if region is not None:
            owner = region.town_id if principal.role == "dispatcher" else region.district_id
        if region is None or region.level != "village" or owner != principal.region_id:
            raise errors.NotFound("没有找到该村(社区)")
    low, high = period(ctx, request.start, request.end)
    where = [
        *scope_conditions(session, principal, request.filters, ORDERS),
        Order.submitted_at >= low,
        Order.submitted_at < high,
    ]
    if request.status:
        where.append(Order.status == request.status)
    return workbook.register_rows(session, ctx, where, unmasked=request.unmasked)


def _audit(
    session: Session, ctx: Context, principal: Principal, request: ExportRequest, rows: int
) -> None:
    audit.record(
        session,
        principal,
        "orders.export_unmasked" if request.unmasked else "orders.export",
        f"orders {request.start}..{request.end}",
        ctx.now(),
        {
            "rows": rows,
            "status": request.status,
            "villageId": request.filters.village_id,
            "agentId": request.filters.agent_id,
            "itemCode": request.filters.item_code,
        },
        (request.purpose or "").strip() or None,
    )


async def export_orders(ctx: Context, principal: Principal, request: ExportRequest) -> bytes:
    """Read in a read transaction (up to 50,000 rows and their decryption would hold every
    write of the process behind SQLite's single writer), then audit, then build: nothing
    is handed out that the audit log does not show."""
    rows = await ctx.db.run_long_read(lambda s: _rows(s, ctx, principal, request), may_lag=True)
    await ctx.db.run_write(lambda s: _audit(s, ctx, principal, request, len(rows)))
    sheets = workbook.Sheets(register=rows)
    return await anyio.to_thread.run_sync(workbook.build_workbook, None, sheets)
