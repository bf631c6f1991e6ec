"""全区通办: a resident served by another station of the district than their own village's,
and the hand-over to the station where they are registered when the item must be handled
there (转户籍地办理).

At submission the resident may name any village station of their district (`stationId`):
the order is that station's, dispatched by its town's rule, and remembers the resident's
own village (`home_village_id`). Whoever takes it there is its first contact (首问负责) and
stays named on it. An item that must be handled where the resident is registered (a
village-level item, or a town-level one when the station is in another town: `must_go_home`
in app/orders/moves.py) cannot be accepted there (409 `handle_at_home`): its agent checks the
materials and hands it over before 受理, a `transfer` move back to submitted at the home
village, which is then dispatched at once as a new request would be (its A agent on duty,
else B, else the town's pool). The resident sees the hand-over on the timeline and is told."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import Context
from app.models import Region
from app.orders import moves, notices
from app.orders.records import ORDER_BY_ID, OrderRow, guide_version, record_event
from app.orders.submission import station_dispatch
from app.security.tokens import Principal


def transfer(
    session: Session, ctx: Context, principal: Principal, order_id: int, reason: str | None
) -> None:
    """The order's agent hands it to the station of the resident's own village, which
    dispatches it (the town's rule: its A or B agent, else the pool)."""
    moves.act(session, ctx, principal, order_id, "transfer", moves.ActionInput(reason=reason))
    order: OrderRow = ORDER_BY_ID.one(session.connection(), {"id": order_id})
    auto = session.scalar(select(Region.auto_dispatch).where(Region.id == order.town_id))
    dispatch = station_dispatch(session, ctx, auto, order.village_id)
    if dispatch.agent is not None:
        moves.system_assign(session, ctx, order_id, dispatch.agent, dispatch.note)
        return
    now, why, rule = ctx.now(), dispatch.note, {"rule": dispatch.rule}
    record_event(session, order_id, None, now, "pool", "submitted", "submitted", why, rule)
    item = guide_version(session, ctx, order.item_version_id).name
    notices.entered_pool(session, ctx, order, item, dispatch.note, now)
