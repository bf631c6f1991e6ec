"""What each move of an order tells whom, and which reminders it sets, in the move's own
transaction (the outbox rule: a committed move has its messages, a failed one has none).
One function per action; app/orders/moves.py's STEPS names it beside the action."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.context import Context
from app.notifications import messages, reminders
from app.notifications.messages import OrderFacts
from app.notifications.outbox import Message, notify, town_dispatchers
from app.orders.records import AGENT_CONTACT, REGION_NAME, OrderRow
from app.orders.states import STATUS_NAMES, UNTAKEN


def facts(
    ctx: Context, order: OrderRow, item: str, status: str, due_at: datetime | None
) -> OrderFacts:
    name = STATUS_NAMES.get(status, status)
    return OrderFacts(order.id, order.number, item, name, due_at, ctx.settings.zone)


def _key(kind: str, order_id: int, now: datetime) -> str:
    return f"{kind}:{order_id}:{now.timestamp():.6f}"


def send(
    session: Session, ctx: Context, recipients: list[int | None], message: Message, now: datetime
) -> None:
    people = [r for r in recipients if r is not None]
    notify(session, ctx, people, message, _key(message.kind, message.order_id or 0, now), now)


def agent_name(session: Session, agent_id: int | None) -> str | None:
    if agent_id is None:
        return None
    row = session.execute(AGENT_CONTACT.statement, {"id": agent_id}).one_or_none()
    return row.name if row else None


def village_name(session: Session, ctx: Context, village_id: int) -> str | None:
    """Region names do not change once written: kept for the life of the process."""
    names: dict[int, str | None] = ctx.caches.setdefault("region_names", {})
    if village_id not in names:
        names[village_id] = session.scalar(REGION_NAME, {"id": village_id})
    return names[village_id]


def new_assignment(
    session: Session,
    ctx: Context,
    order: OrderRow,
    item: str,
    agent_id: int,
    now: datetime,
) -> None:
    """An agent got the order (dispatch, re-assignment, hand-over): tell them and watch that
    they take it."""
    o = facts(ctx, order, item, "assigned", None)
    marks = [
        name
        for name, flag in (
            ("绿色通道", order.green_channel),
            ("上门", order.home_visit),
            ("预约", order.appointment_at),
        )
        if flag
    ]
    message = messages.assigned(o, village_name(session, ctx, order.village_id), marks)
    send(session, ctx, [agent_id], message, now)
    if order.status in UNTAKEN:
        reminders.after_assignment(session, ctx, order.id, now)


def entered_pool(
    session: Session, ctx: Context, order: OrderRow, item: str, why: str, now: datetime
) -> None:
    o = facts(ctx, order, item, "submitted", None)
    message = messages.pool(o, village_name(session, ctx, order.village_id), why)
    send(session, ctx, list(town_dispatchers(session, ctx, order.town_id)), message, now)


@dataclass(frozen=True)
class Moved:
    """A move just written, for what it tells whom (each action's `after` in
    app/orders/moves.py STEPS): `order` is the row before the move, `values` what the move
    wrote, `by` the role that moved it ("system" for a rule or a job)."""

    session: Session
    ctx: Context
    by: str
    order: OrderRow
    item: str
    to: str
    values: dict[str, Any]
    note: str | None
    data: dict[str, Any] | None
    now: datetime

    @property
    def due_at(self) -> Any:
        return self.values.get("due_at", self.order.due_at)

    @property
    def o(self) -> OrderFacts:
        return facts(self.ctx, self.order, self.item, self.to, self.due_at)

    @property
    def resident(self) -> Any:
        return self.order.resident_id

    @property
    def agent(self) -> Any:
        return self.values.get("agent_id", self.order.agent_id)

    def tell(self, recipients: list[int | None], message: Message) -> None:
        send(self.session, self.ctx, recipients, message, self.now)

    def tell_dispatchers(self, message: Message) -> None:
        self.tell(list(town_dispatchers(self.session, self.ctx, self.order.town_id)), message)


def assigned(m: Moved) -> None:
    if m.order.status != "accepted":
        new_assignment(m.session, m.ctx, m.order, m.item, m.values["agent_id"], m.now)
        return
    # A disputed order the dispatcher dispatched again: it runs already, towards its due time.
    due = messages.last_day(m.due_at, m.ctx.settings.zone)
    text = f"群众提出异议后由调度员派给您,请重新办理,{due}前办结。"
    m.tell([m.agent], messages.for_agent(m.o, "assigned", "异议办件派给您", text))


def declined(m: Moved) -> None:
    m.tell_dispatchers(messages.declined(m.o, agent_name(m.session, m.order.agent_id), m.note))


def accepted(m: Moved) -> None:
    m.tell([m.resident], messages.accepted(m.o, m.now))
    reminders.after_clock_start(m.session, m.ctx, m.order.id, m.due_at, m.now)


def supplement_requested(m: Moved) -> None:
    missing = (m.data or {}).get("missing", [])
    m.tell([m.resident], messages.supplement_requested(m.o, missing))
    reminders.after_supplement_request(m.session, m.ctx, m.order.id, m.now)


def supplemented(m: Moved) -> None:
    if m.order.status == "accepted":
        # 容缺 materials arrived while the clock runs: neither a resumption nor a new clock.
        if m.by == "resident":
            text = "的容缺材料已补正,请审核。"
            m.tell([m.agent], messages.for_agent(m.o, "supplemented", "容缺材料已补正", text))
    elif m.order.status == "supplement_required":
        text = "的补正材料已提交,请审核。"
        m.tell([m.agent], messages.for_agent(m.o, "supplemented", "材料已补正", text))
    else:  # on hold: the materials it waited for resume it
        resumed(m)


def resumed(m: Moved) -> None:
    if m.by == "resident":
        message = messages.for_agent(m.o, "resumed", "恢复办理", "已恢复办理,请继续办理。")
        m.tell([m.agent], message)
    else:
        m.tell([m.resident], messages.with_reason(m.o, "resumed", "恢复办理", "已恢复办理", m.note))
    if m.order.overdue_at is None:  # the clock runs again towards a new due time
        reminders.after_clock_start(m.session, m.ctx, m.order.id, m.due_at, m.now)


def rejected(m: Moved) -> None:
    m.tell([m.resident], messages.with_reason(m.o, "rejected", "不予受理", "不予受理", m.note))


def held(m: Moved) -> None:
    m.tell([m.resident], messages.with_reason(m.o, "held", "办理中止", "暂停办理", m.note))


def completed(m: Moved) -> None:
    m.tell([m.resident], messages.completed(m.o, m.values.get("outcome"), m.note))


def delivered(m: Moved) -> None:
    m.tell([m.resident], messages.delivered(m.o, m.values.get("delivery_method")))
    invite_rating(m.session, m.ctx, m.o, m.resident, m.now)


def receipt_confirmed(m: Moved) -> None:
    text = "的办理结果群众已确认收到。"
    m.tell([m.agent], messages.for_agent(m.o, "received", "群众已确认收到", text))
    invite_rating(m.session, m.ctx, m.o, m.resident, m.now)


def cancelled(m: Moved) -> None:
    m.tell([m.agent], messages.for_agent(m.o, "cancelled", "群众撤回委托", "已被群众撤回。"))


def terminated(m: Moved) -> None:
    message = messages.with_reason(m.o, "terminated", "终止办理", "已终止办理", m.note)
    m.tell([m.resident] + ([m.agent] if m.by == "dispatcher" else []), message)


def disputed(m: Moved) -> None:
    """提出异议: the resident is told who takes it up and by when; the agent who had it and
    the town's dispatchers are told of the dispute (a later dispute is the dispatchers' to
    dispatch); the reminders of the new due time are set."""
    rounds = int((m.data or {}).get("round", 1))
    agent = agent_name(m.session, m.order.agent_id)
    village = village_name(m.session, m.ctx, m.order.village_id)
    m.tell([m.resident], messages.dispute_received(m.o, to_dispatchers=rounds > 1))
    to_agent = messages.disputed(m.o, village, agent, m.note, rounds, for_dispatcher=False)
    m.tell([m.order.agent_id], to_agent)
    m.tell_dispatchers(messages.disputed(m.o, village, agent, m.note, rounds, for_dispatcher=True))
    reminders.after_clock_start(m.session, m.ctx, m.order.id, m.due_at, m.now)


def expired(m: Moved) -> None:
    message = messages.expired(m.o, m.ctx.settings.scheduler.supplement_expire_days)
    m.tell([m.resident, m.agent], message)


def invite_rating(
    session: Session, ctx: Context, o: OrderFacts, resident: int, now: datetime
) -> None:
    """After hand-back: ask for a rating, remind after a few days, default after the window."""
    send(session, ctx, [resident], messages.rating_invite(o, ctx.settings.ratings.window_days), now)
    reminders.before_rating_default(session, ctx, o.order_id, now)


def transferred(m: Moved) -> None:
    """全区通办: the resident hears where their request went and that the agent who first
    received it can still be asked."""
    home = village_name(m.session, m.ctx, m.values["village_id"]) or "户籍地"
    first = agent_name(m.session, m.order.agent_id)
    body = f"您委托的“{m.item}”已转至户籍地{home}便民服务站办理"
    body += f",首问代办员{first}仍可为您解答。" if first else "。"
    m.tell([m.resident], m.o.message("transferred", "转户籍地办理", body, note=home))
