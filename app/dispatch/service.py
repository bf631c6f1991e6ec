"""Agents' duty and leave, handing a station's open orders from one agent to another, and
the town's dispatch rule. Plain synchronous use cases run by `Database.run_write`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import msgspec
from sqlalchemy.orm import Session

from app import audit, errors
from app.context import Context
from app.kinds import DutyStatus, Post
from app.models import Account, Region
from app.orders.assignment import DUTY_NAMES, duty_status
from app.orders.handover import hand_over, station_partner
from app.security.tokens import Principal

MAX_LEAVE_DAYS = 366


class DutyView(msgspec.Struct, rename="camel", kw_only=True):
    agent_id: int
    name: str | None
    post: Post | None
    duty_status: DutyStatus
    duty_status_name: str
    leave_until: date | None
    handed_over: int = 0  # open orders handed to the partner agent with this change


class TownRule(msgspec.Struct, rename="camel", kw_only=True):
    town_id: int
    town_name: str
    auto_dispatch: bool


@dataclass(frozen=True)
class DutyChange:
    status: DutyStatus
    leave_until: date | None = None
    hand_over: bool = False  # hand my open orders to my station's other agent


def agent_in_scope(session: Session, principal: Principal, agent_id: int) -> Account:
    """The agent themselves, or an agent of the dispatcher's town; anyone else is 404."""
    agent = session.get(Account, agent_id)
    found = agent is not None and agent.role == "agent" and agent.disabled_at is None
    if found and principal.role == "agent":
        found = agent_id == principal.account_id
    elif found and principal.role == "dispatcher":
        post = session.get(Region, agent.region_id) if agent else None
        found = post is not None and principal.region_id in (post.town_id, post.id)
    if not found or agent is None:
        raise errors.NotFound("本镇没有该代办员")
    return agent


def duty_view(agent: Account, day: date, handed_over: int = 0) -> DutyView:
    status = duty_status(agent.on_duty, agent.leave_until, day)
    return DutyView(
        agent_id=agent.id,
        name=agent.name,
        post=agent.post,
        duty_status=status,
        duty_status_name=DUTY_NAMES[status],
        leave_until=agent.leave_until if status == "on_leave" else None,
        handed_over=handed_over,
    )


def set_duty(
    session: Session, ctx: Context, principal: Principal, agent_id: int, change: DutyChange
) -> DutyView:
    """On duty, off duty, or on leave up to a date; optionally hand the open orders over."""
    agent = agent_in_scope(session, principal, agent_id)
    day = ctx.today()
    if change.status == "on_leave":
        until = change.leave_until
        if until is None or not day <= until or (until - day).days > MAX_LEAVE_DAYS:
            raise errors.InvalidInput(
                errors=[{"field": "leaveUntil", "message": "请填写请假的最后一天(今天起一年内)"}]
            )
        agent.leave_until = until
    else:
        if change.leave_until is not None:
            raise errors.InvalidInput(
                errors=[{"field": "leaveUntil", "message": "只有请假需要填写截止日期"}]
            )
        agent.on_duty = change.status == "on_duty"
        agent.leave_until = None
    agent.updated_at = ctx.now()
    session.flush()
    handed = 0
    if change.hand_over:
        partner = station_partner(session, agent, day)
        handed = hand_over(session, ctx, principal, agent, partner, DUTY_NAMES[change.status])
    if principal.role != "agent":  # a dispatcher changing an agent's duty: a dispatch setting
        detail = {
            "status": change.status,
            "leaveUntil": str(change.leave_until) if change.leave_until else None,
            "handedOver": handed,
        }
        audit.record(session, principal, "dispatch.duty", f"account:{agent.id}", ctx.now(), detail)
    return duty_view(agent, day, handed)


def hand_over_to(
    session: Session,
    ctx: Context,
    principal: Principal,
    agent_id: int,
    to_agent_id: int | None,
    reason: str | None,
) -> DutyView:
    """A dispatcher hands all of an agent's open orders to another agent of the town (by
    default the station's partner on duty)."""
    source = agent_in_scope(session, principal, agent_id)
    day = ctx.today()
    target = (
        agent_in_scope(session, principal, to_agent_id)
        if to_agent_id is not None
        else station_partner(session, source, day)
    )
    handed = hand_over(session, ctx, principal, source, target, reason or "不在岗")
    detail = {"toAgentId": target.id, "handedOver": handed, "reason": reason}
    audit.record(
        session, principal, "dispatch.hand_over", f"account:{source.id}", ctx.now(), detail
    )
    return duty_view(source, day, handed)


def _town(session: Session, principal: Principal) -> Region:
    town = session.get(Region, principal.region_id)
    if town is None or town.level != "town":
        raise errors.NotFound("没有找到该镇")
    return town


def town_rule(session: Session, principal: Principal) -> TownRule:
    town = _town(session, principal)
    return TownRule(town_id=town.id, town_name=town.name, auto_dispatch=town.auto_dispatch)


def set_town_rule(
    session: Session, ctx: Context, principal: Principal, auto_dispatch: bool
) -> TownRule:
    """自动派单 or 人工派单 for the dispatcher's town, from the next order on."""
    town = _town(session, principal)
    town.auto_dispatch = auto_dispatch
    session.flush()
    audit.record(
        session,
        principal,
        "dispatch.rule",
        f"region:{town.id}",
        ctx.now(),
        {"autoDispatch": auto_dispatch},
    )
    return town_rule(session, principal)
