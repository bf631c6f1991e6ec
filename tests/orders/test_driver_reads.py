"""The hot reads that run on asyncpg's own path (app/statements.py) give, on the real schema,
the rows SQLAlchemy's execute gives: an order, its timeline, its agent, where a staff list's
cursor order stands, and every shape of list. PostgreSQL only: elsewhere these reads are
SQLAlchemy's own."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from app.context import Context
from app.orders.queries import EVENTS_OF_ORDER, POSITION_OF_ORDER, _list_statement
from app.orders.records import AGENT_CONTACT, ORDER_BY_ID
from app.orders.submission import SUBMISSION_CONTEXT
from tests.conftest import ON_POSTGRES
from tests.factories import submit, taken_by_agent1a
from tests.platform.test_statements_asyncpg import same_rows

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="asyncpg's path: PostgreSQL only")


async def test_the_hot_reads_give_the_rows_sqlalchemy_gives(client, ctx: Context, demo, login):
    resident = await login("resident1")
    ids = []
    for n in range(3):
        response = await submit(client, resident, key=f"driver-reads-{n}")
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    await taken_by_agent1a(client, login, ids[0])  # an agent, and events by three people
    order = await ctx.db.run_read(lambda s: ORDER_BY_ID.one(s.connection(), {"id": ids[0]}))
    assert order.agent_id is not None
    scope = {
        "resident": order.resident_id,
        "agent": order.agent_id,
        "dispatcher": order.town_id,
        "admin": order.district_id,
    }
    now = ctx.now()

    def compare(session: Session) -> list[int]:
        conn = session.connection()
        found = [
            len(same_rows(conn, ORDER_BY_ID, {"id": ids[0]})),
            len(same_rows(conn, EVENTS_OF_ORDER, {"order_id": ids[0]})),
            len(same_rows(conn, AGENT_CONTACT, {"id": order.agent_id})),
            len(same_rows(conn, POSITION_OF_ORDER, {"id": ids[0]})),
        ]
        for key, village in (
            ("driver-reads-0", None),
            ("driver-reads-new", None),
            ("driver-reads-new", order.village_id),
        ):
            # A day without numbers: PostgreSQL's statement takes none (a number taken
            # would differ between the two runs compared).
            context = {"account": order.resident_id, "key": key, "village": village}
            context |= {"code": "RS-0001", "day": date(2000, 1, 1)}
            statement = SUBMISSION_CONTEXT[conn.dialect.name]
            found.append(len(same_rows(conn, statement, context)))
        for role, status, village, agent, overdue, due_first in itertools.product(
            scope, (False, True), (False, True), (False, True), (None, True, False), (False, True)
        ):
            if due_first:
                cursors: tuple[str | None, ...] = (None, "running", "held")
            else:
                cursors = (None, "id" if role == "resident" else "priority")
            for cursor in cursors:
                statement = _list_statement(
                    role, status, village, agent, overdue, due_first, cursor
                )
                params = {
                    "scope": scope[role],
                    "status": order.status,
                    "village": order.village_id,
                    "agent": order.agent_id,
                    "now": now,
                    "cursor": max(ids) + 1,
                    "limit": 21,
                    "priority": 10,
                    "after": now - timedelta(days=365),
                    "left": -1,
                }
                found.append(len(same_rows(conn, statement, params)))
        return found

    found = await ctx.db.run_read(compare)
    assert found[:7] == [1, 4, 1, 1, 1, 1, 1], found[:7]  # events: submit, pool, assign, take
    lists = found[7:]
    assert sum(1 for n in lists if n) > len(lists) // 4, found  # many lists had rows
