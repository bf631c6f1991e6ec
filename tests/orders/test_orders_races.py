"""Two moves on one order at once: exactly one wins, the other is 409 `illegal_transition`
with the status it lost to, and nothing of the loser is written.

On SQLite every write runs inside the write lock (one writer per process, BEGIN IMMEDIATE
across processes), so a move always decides from a fresh read and the loser is refused by
the transition table. On PostgreSQL two moves can decide from the same read and meet only
at the UPDATE: there the compare-and-set on status and agent decides. The PostgreSQL tests
hold the order's row lock until both moves wait on it, so that both have read the order and
passed the table's checks before either writes: the loser can only be refused by the
compare-and-set. A job's move from a read that went stale is checked on both backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.asgi import create_app
from app.context import Context
from app.models import Notification, Order, OrderEvent, Upload
from app.orders import moves
from app.orders.records import ORDER_BY_ID
from tests.conftest import ON_POSTGRES, Clock, serve
from tests.factories import agent_id, submit, taken_by_agent1a, upload_photo

postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="needs two transactions at once")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai


async def _reviewing(client, login) -> int:
    """resident1's RS-0001, assigned to agent1a (刘桂兰) and taken."""
    response = await submit(client, await login("resident1"))
    assert response.status_code == 201, response.text
    order_id = int(response.json()["id"])
    await taken_by_agent1a(client, login, order_id)
    return order_id


async def _on_hold(client, login) -> int:
    order_id = await _reviewing(client, login)
    agent = await login("agent1a")
    for action, body in (("accept", {}), ("hold", {"reason": "等待申请人补签户口簿"})):
        moved = await client.post(
            f"/mp/v1/agent/orders/{order_id}/{action}", json=body, headers=agent
        )
        assert moved.status_code == 200, moved.text
    return order_id


async def _counts(ctx: Context, order_id: int) -> tuple[int, int]:
    def count(session: Session) -> tuple[int | None, int | None]:
        events = session.scalar(
            select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == order_id)
        )
        notes = session.scalar(select(func.count()).select_from(Notification))
        return events, notes

    events, notes = await ctx.db.run_read(count)
    return int(events or 0), int(notes or 0)


def _lost(response, status: str) -> None:
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "illegal_transition"
    assert response.json()["currentStatus"] == status


async def _supplement_required(client, login) -> int:
    order_id = await _reviewing(client, login)
    asked = await client.post(
        f"/mp/v1/agent/orders/{order_id}/request-supplement",
        json={"missing": [{"code": "hukou_book", "reason": "缺少本人页"}]},
        headers=await login("agent1a"),
    )
    assert asked.status_code == 200, asked.text
    return order_id


async def test_two_services_moving_one_order_at_once_one_wins(
    client, demo, login, ctx, settings, clock
):
    """The resident (through one service) and the agent on her behalf (through another, as
    a second process would) supplement the same notice at once: one wins, the other gets 409
    with the status it lost to; the loser's photo stays unattached, its event and notice
    unwritten."""
    order_id = await _supplement_required(client, login)
    resident, agent = await login("resident1"), await login("agent1a")
    hers, his = await upload_photo(client, resident), await upload_photo(client, agent)
    events, notes = await _counts(ctx, order_id)
    other = Context.build(settings)
    other.now = clock
    try:
        async with serve(create_app(settings, ctx=other)) as second:
            by_resident, by_agent = await asyncio.gather(
                client.post(
                    f"/mp/v1/orders/{order_id}/supplement",
                    json={"materials": {"hukou_book": [hers]}},
                    headers=resident,
                ),
                second.post(
                    f"/mp/v1/agent/orders/{order_id}/supplement",
                    json={"materials": {"hukou_book": [his]}},
                    headers=agent,
                ),
            )
    finally:
        await other.aclose()
    codes = sorted((by_resident.status_code, by_agent.status_code))
    assert codes == [200, 409], (by_resident.text, by_agent.text)
    winner, loser = (hers, his) if by_resident.status_code == 200 else (his, hers)
    _lost(by_agent if winner == hers else by_resident, "reviewing")
    assert await _counts(ctx, order_id) == (events + 1, notes + 1)

    def check(session: Session) -> Order | None:
        order = session.get(Order, order_id)
        assert session.get(Upload, winner).order_id == order_id
        assert session.get(Upload, loser).order_id is None
        return order

    order = await ctx.db.run_read(check)
    assert order.status == "reviewing"
    assert order.materials["hukou_book"]["uploads"] == [winner]


async def test_a_job_moving_on_a_stale_read_loses_to_the_resident(client, demo, login, ctx, clock):
    """The lapse job read an order waiting for its supplement; the resident supplemented
    before the job wrote: its compare-and-set finds the status moved on and writes nothing."""
    order_id = await _supplement_required(client, login)
    resident = await login("resident1")
    stale = await ctx.db.run_read(
        lambda s: s.execute(ORDER_BY_ID.statement, {"id": order_id}).one()
    )
    sent = await client.post(
        f"/mp/v1/orders/{order_id}/supplement",
        json={"materials": {"hukou_book": [await upload_photo(client, resident)]}},
        headers=resident,
    )
    assert sent.status_code == 200, sent.text
    events, notes = await _counts(ctx, order_id)
    expired = await ctx.db.run_write(
        lambda s: moves.system_move(s, ctx, stale, "expire", "逾期未补正,自动撤回")
    )
    assert expired is False
    assert await _counts(ctx, order_id) == (events, notes)
    assert (await ctx.db.run_read(lambda s: s.get(Order, order_id))).status == "reviewing"


# --- PostgreSQL: both moves decided from the same read -------------------------------------


@asynccontextmanager
async def _row_locked(ctx: Context, order_id: int) -> AsyncIterator[None]:
    """Hold the order's row lock: moves read it freely but wait at their UPDATE."""
    async with ctx.db.async_engine.connect() as conn:
        await conn.execute(
            text("SELECT id FROM orders WHERE id = :id FOR UPDATE"), {"id": order_id}
        )
        yield
        await conn.rollback()


async def _waiting(ctx: Context, count: int) -> None:
    """Until `count` UPDATEs of orders wait for the row lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() AND query ILIKE 'UPDATE orders%'"
    )
    for _ in range(1000):
        async with ctx.db.async_engine.connect() as conn:
            if (await conn.scalar(query)) == count:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} moves never waited on the order's row")


async def _race(ctx: Context, order_id: int, first, second):
    """Start `first`, let it wait on the row, start `second`, let it wait, then release."""
    async with _row_locked(ctx, order_id):
        winner = asyncio.ensure_future(first)
        await _waiting(ctx, 1)
        loser = asyncio.ensure_future(second)
        await _waiting(ctx, 2)
    return await winner, await loser


@postgres_only
async def test_two_people_deciding_from_the_same_read_meet_at_the_compare_and_set(
    client, demo, login, ctx
):
    order_id = await _reviewing(client, login)
    agent, resident = await login("agent1a"), await login("resident1")
    events, notes = await _counts(ctx, order_id)
    accepted, cancelled = await _race(
        ctx,
        order_id,
        client.post(f"/mp/v1/agent/orders/{order_id}/accept", json={}, headers=agent),
        client.post(f"/mp/v1/orders/{order_id}/cancel", json={}, headers=resident),
    )
    assert accepted.status_code == 200, accepted.text
    _lost(cancelled, "accepted")  # it had passed the table's check against "reviewing"
    assert await _counts(ctx, order_id) == (events + 1, notes + 1)
    assert (await ctx.db.run_read(lambda s: s.get(Order, order_id))).status == "accepted"


@postgres_only
async def test_an_agents_move_loses_to_a_reassignment_decided_at_the_same_time(
    client, demo, login, ctx
):
    """Two agents' moves from one read: the dispatcher hands the order to 王建军 while
    刘桂兰 accepts it. The status is unchanged, the agent is not: her accept loses."""
    order_id = await _reviewing(client, login)
    dispatcher, agent = await login("dispatcher1a"), await login("agent1a")
    wang = await agent_id(client, dispatcher, "王建军")
    events, _ = await _counts(ctx, order_id)
    reassigned, accepted = await _race(
        ctx,
        order_id,
        client.post(
            f"/mp/v1/dispatch/orders/{order_id}/reassign",
            json={"agentId": wang, "reason": "刘桂兰下村走访"},
            headers=dispatcher,
        ),
        client.post(f"/mp/v1/agent/orders/{order_id}/accept", json={}, headers=agent),
    )
    assert reassigned.status_code == 200, reassigned.text
    _lost(accepted, "reviewing")
    assert accepted.json()["detail"] == "办件刚刚改派给了其他代办员,请刷新后再操作"
    assert (await _counts(ctx, order_id))[0] == events + 1
    order = await ctx.db.run_read(lambda s: s.get(Order, order_id))
    assert order.agent_id == wang and order.status == "reviewing"
    assert order.accepted_at is None and order.due_at is None  # nothing of the accept


@postgres_only
async def test_a_supplement_that_loses_attaches_nothing(client, demo, login, ctx):
    order_id = await _on_hold(client, login)
    agent, resident = await login("agent1a"), await login("resident1")
    photo = await upload_photo(client, resident)
    events, notes = await _counts(ctx, order_id)
    terminated, supplemented = await _race(
        ctx,
        order_id,
        client.post(
            f"/mp/v1/agent/orders/{order_id}/terminate",
            json={"reason": "群众来电撤回"},
            headers=agent,
        ),
        client.post(
            f"/mp/v1/orders/{order_id}/supplement",
            json={"materials": {"hukou_book": [photo]}},
            headers=resident,
        ),
    )
    assert terminated.status_code == 200, terminated.text
    _lost(supplemented, "cancelled")
    assert await _counts(ctx, order_id) == (events + 1, notes + 1)

    def check(session: Session) -> Order | None:
        assert session.get(Upload, photo).order_id is None
        return session.get(Order, order_id)

    order = await ctx.db.run_read(check)
    assert order.status == "cancelled" and order.materials["hukou_book"]["uploads"] != [photo]
