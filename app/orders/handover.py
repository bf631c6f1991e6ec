"""Who takes over an agent's open orders (AB岗: the partner where they are posted), and
handing them all over at once: going on leave or off duty, a dispatcher's hand-over, an
admin disabling an agent."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models import Account, Order
from app.orders.assignment import takes_orders
from app.orders.moves import reassign
from app.security.tokens import Principal


def station_partner(session: Session, agent: Account, day: date) -> Account:
    """The other agent of the same station (or centre) who is on duty and can log in: B for
    A (AB岗), A for B."""
    others = session.scalars(
        select(Account)
        .where(
            Account.region_id == agent.region_id,
            Account.role == "agent",
            Account.id != agent.id,
            Account.disabled_at.is_(None),
            Account.openid.is_not(None),
        )
        .order_by(Account.post.is_(None), Account.post, Account.id)
    ).all()
    on_duty = [a for a in others if takes_orders(a, day)]
    wanted = {"A": "B", "B": "A"}.get(agent.post or "")
    for candidate in on_duty:
        if candidate.post == wanted:
            return candidate
    if on_duty:
        return on_duty[0]
    raise errors.Conflict("本站没有在岗的代办员可以接手,请联系镇调度员改派")


def hand_over(
    session: Session,
    ctx: Context,
    principal: Principal,
    source: Account,
    target: Account,
    reason: str,
) -> int:
    """Every open order of `source` goes to `target` in one statement, each with a timeline
    event (改派); the first contact (首问负责) stays named. Returns how many moved."""
    if target.id == source.id:
        raise errors.InvalidInput(errors=[{"field": "toAgentId", "message": "不能交给本人"}])
    note = f"{source.name}{reason},办件交由{target.name}接手"
    data = {"fromAgentId": source.id, "handOver": True}
    of_source = (Order.agent_id == source.id,)
    return len(reassign(session, ctx, principal, of_source, target, note, data, ctx.now()))
