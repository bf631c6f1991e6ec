"""An admin retires a town or a village, and learns what is left there."""

from __future__ import annotations

import msgspec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit, errors
from app.context import Context
from app.models import Account, Order
from app.orders.states import OPEN
from app.regions.service import RegionRetired, RegionView, in_district, region_view, retire
from app.security.tokens import Principal


class RegionRetirement(msgspec.Struct, rename="camel", kw_only=True):
    """What retiring left behind: open orders go on to their end where they are; staff
    still posted there should be moved or disabled."""

    retired: list[RegionView]  # the region and, for a town, its villages
    open_orders: int
    staff_posted: int


def retire_region(
    session: Session, ctx: Context, admin: Principal, region_id: int
) -> RegionRetirement:
    region = in_district(session, admin, region_id)
    if region.level == "district":
        raise errors.Conflict("不能撤销本区县")
    if region.retired_at is not None:
        raise RegionRetired(f"{region.name}已撤销")
    now = ctx.now()
    retired = retire(session, [region], now)
    ids = [r.id for r in retired]
    open_orders = session.scalar(
        select(func.count())
        .select_from(Order)
        .where(Order.village_id.in_(ids) | Order.town_id.in_(ids), Order.status.in_(OPEN))
    )
    staff_posted = session.scalar(
        select(func.count())
        .select_from(Account)
        .where(
            Account.region_id.in_(ids),
            Account.role != "resident",
            Account.disabled_at.is_(None),
        )
    )
    detail = {"code": region.code, "retired": len(ids)}
    audit.record(session, admin, "region.retire", f"region:{region.id}", now, detail)
    return RegionRetirement(
        retired=[region_view(r) for r in retired],
        open_orders=open_orders or 0,
        staff_posted=staff_posted or 0,
    )
