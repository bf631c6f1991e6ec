"""The dispatcher's board and an agent's list in a town with 10,000 open orders, 40 agents and
a long closed history: median latency of each beside a primary-key read in the same run, and
the query plan of every statement behind them.

    .venv/bin/python bench/dispatch.py [--open 10000] [--history 200000] [--runs 300]

In-process on a SQLite file (the embedded default), through the same `Database.run_read` the
API uses, so the figures are the queries' own cost without HTTP around them. The board and
the list should answer from index ranges bounded by the town or the agent: their cost follows
what is open, not the history, so --history 0 and --history 1000000 print about the same.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app import migrate
from app.context import Context
from app.demo import seed_demo
from app.dispatch import board
from app.models import Account, CatalogueItem, Region
from app.models.tables import ACCOUNTS, EVENTS, ORDERS
from app.orders import queries
from app.orders.records import ORDER_BY_ID
from app.security.tokens import Principal
from app.settings import load_settings
from app.statements import DriverStatement, connection_of

AGENTS = 40
OPEN_MIX = [  # share of the open orders in each status
    ("submitted", 0.08),
    ("assigned", 0.12),
    ("reviewing", 0.10),
    ("supplement_required", 0.05),
    ("accepted", 0.55),
    ("on_hold", 0.10),
]


def scratch_folder(kind: str) -> Path:
    """A folder of the run's own for its database and files, removed when the run ends."""
    folder = Path(tempfile.mkdtemp(prefix=f"daiban-bench-{kind}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def settings(folder: Path) -> Any:
    return load_settings(
        {
            "DAIBAN_VAR_DIR": str(folder),
            "DAIBAN_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}",
            "DAIBAN_SECURITY_SECRET_KEY": "bench-secret-key-that-is-long-enough-012345",
            "DAIBAN_SECURITY_PII_KEYS": "b1:" + base64.b64encode(b"b" * 32).decode(),
            "DAIBAN_SECURITY_PII_HASH_KEY": "bench-hash-key",
            "DAIBAN_SCHEDULER_MODE": "off",
            "DAIBAN_LOG_LEVEL": "WARNING",
        }
    )


def fill(session: Session, now: datetime, open_orders: int, history: int) -> tuple[int, int]:
    """40 agents in 店子镇's three villages, the open orders spread over them, and `history`
    closed orders of the same town; half of them 上报件 with a step recorded. Returns (the
    town's id, the busiest agent's id)."""
    town = session.scalar(select(Region).where(Region.name == "店子镇"))
    assert town is not None
    villages = session.scalars(select(Region).where(Region.town_id == town.id)).all()
    have = session.scalars(
        select(Account.id).where(
            Account.role == "agent", Account.region_id.in_(v.id for v in villages)
        )
    ).all()
    extra = [
        {
            "role": "agent",
            "name": f"代办员{i:02d}",
            "region_id": villages[i % len(villages)].id,
            "openid": f"bench_agent_{i}",
            "on_duty": True,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(AGENTS - len(have))
    ]
    agents = list(have) + list(
        session.execute(insert(ACCOUNTS).returning(ACCOUNTS.c.id), extra).scalars()
    )
    agent_village = dict(
        session.execute(select(Account.id, Account.region_id).where(Account.id.in_(agents))).all()
    )
    resident = session.scalar(select(Account.id).where(Account.openid == "dev_resident1"))
    item = session.scalar(select(CatalogueItem).where(CatalogueItem.code == "RS-0001"))
    # Half the orders of an escalated item (上报件: 67 of the 115 shipped items), each sent
    # up to the department: the board lists those under way.
    escalated = session.scalar(select(CatalogueItem).where(CatalogueItem.code == "RS-0003"))
    assert item is not None and resident is not None and escalated is not None
    step = {"key": "hrss", "department": "hrss", "name": "区人力资源和社会保障局", "step": "sent"}
    rng = random.Random(7)
    statuses = [s for s, share in OPEN_MIX for _ in range(int(share * open_orders))]
    statuses += ["accepted"] * (open_orders - len(statuses))
    rows = []
    for n in range(history + open_orders):
        status = "closed" if n < history else statuses[n - history]
        agent = None if status == "submitted" else rng.choice(agents)
        village = agent_village[agent] if agent else villages[n % len(villages)].id
        running = status in ("accepted", "on_hold")
        due = now + timedelta(hours=rng.randint(-72, 240)) if running else None
        flagged = rng.random() < 0.1
        up = rng.random() < 0.5
        kind = escalated if up else item
        progress = {"parts": [step | {"on": f"{now:%Y-%m-%d}", "at": now.isoformat()}]}
        rows.append(
            {
                "number": f"DB{20200101 + n // 900000:08d}{n % 900000:06d}",
                "resident_id": resident,
                "village_id": village,
                "town_id": town.id,
                "district_id": town.district_id,
                "item_id": kind.id,
                "item_version_id": kind.current_version_id,
                "progress": progress if up else None,
                "status": status,
                "channel": "mini_program",
                "green_channel": flagged,
                "home_visit": False,
                "priority": int(flagged),
                "materials": {},
                "agent_id": agent,
                "submitted_at": now - timedelta(days=rng.randint(1, 2000) if n < history else 1),
                "accepted_at": now - timedelta(days=3) if running else None,
                "promised_days": 5,
                "due_at": due,
                "due_provisional": False,
                "overdue_at": due if status == "on_hold" and due and due < now else None,
                "fees_collected_fen": 0,
                "updated_at": now,
            }
        )
        if len(rows) == 5000:
            session.execute(insert(ORDERS), rows)
            rows = []
    if rows:
        session.execute(insert(ORDERS), rows)
    session.execute(
        insert(EVENTS).from_select(
            ["order_id", "at", "actor_role", "action", "from_status", "to_status", "note"],
            select(
                ORDERS.c.id,
                ORDERS.c.submitted_at,
                text("'system'"),
                text("'pool'"),
                text("'submitted'"),
                text("'submitted'"),
                text("'本镇为人工派单,进入派单池等待调度员派单'"),
            ).where(ORDERS.c.status == "submitted"),
        )
    )
    busiest = session.execute(
        text(
            "SELECT agent_id FROM orders WHERE status NOT IN ('closed') AND agent_id IS NOT NULL "
            "GROUP BY agent_id ORDER BY count(*) DESC LIMIT 1"
        )
    ).scalar_one()
    session.execute(text("ANALYZE"))
    return town.id, int(busiest)


def plan(session: Session, statement: Any, params: dict[str, Any]) -> list[str]:
    """SQLite's plan for the SQL the statement really sends, caught as it runs."""
    connection = session.connection()
    sent: list[tuple[str, Any]] = []

    def catch(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        sent.append((sql, parameters))

    if isinstance(statement, DriverStatement):  # the same SQL, run through SQLAlchemy
        statement = statement.statement
    event.listen(connection, "before_cursor_execute", catch)
    try:
        connection.execute(statement, params).all()
    finally:
        event.remove(connection, "before_cursor_execute", catch)
    sql, parameters = sent[-1]
    rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)
    return [row[-1] for row in rows]


async def timed(ctx: Context, work: Callable[[Session], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        await ctx.db.run_read(work)
        out.append((time.perf_counter() - start) * 1000)
    return out


async def main(args: argparse.Namespace) -> None:
    folder = scratch_folder("dispatch")
    ctx = Context.build(settings(folder))
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    ctx.now = lambda: now
    await migrate.upgrade(ctx.db)
    await ctx.db.run_write(lambda s: seed_demo(s, ctx))
    print(f"filling: {args.open:,} open orders, {args.history:,} closed, {AGENTS} agents …")
    town, agent = await ctx.db.run_write(lambda s: fill(s, now, args.open, args.history))
    dispatcher = Principal(0, "dispatcher", town)
    agent_principal = Principal(agent, "agent", None)
    first_id = await ctx.db.run_read(lambda s: s.scalar(select(ORDERS.c.id).limit(1)))

    cases: dict[str, Callable[[Session], Any]] = {
        "primary-key read (baseline)": lambda s: ORDER_BY_ID.one(
            connection_of(s), {"id": first_id}
        ),
        "dispatcher board": lambda s: board.board(s, ctx, dispatcher),
        "agent list (20, flagged first)": lambda s: queries.list_orders(
            s, ctx, agent_principal, status=None, cursor=None, limit=20
        ),
        "agent list (20, due first)": lambda s: queries.list_orders(
            s, ctx, agent_principal, status=None, cursor=None, limit=20, due_first=True
        ),
        "dispatcher list (20, overdue)": lambda s: queries.list_orders(
            s, ctx, dispatcher, status=None, overdue=True, cursor=None, limit=20
        ),
    }
    for work in cases.values():  # warm the caches (calendar, statements, pages)
        await timed(ctx, work, 20)
    results = {name: [] for name in cases}
    for _ in range(5):  # interleaved rounds: this machine's speed drifts minute to minute
        for name, work in cases.items():
            results[name] += await timed(ctx, work, args.runs // 5)
    base = statistics.median(results["primary-key read (baseline)"])
    print(f"\n{'query':34} {'median ms':>10} {'p90 ms':>8} {'× PK read':>10}")
    for name, samples in results.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{name:34} {median:10.3f} {p90:8.3f} {median / base:10.1f}")

    params = {
        "town": town,
        "now": now,
        "soon": now + timedelta(days=1),
        "priority": 1,
        "limit": 20,
        "status": "accepted",
    }
    statements = {
        "board: counts by status": board.COUNTS,
        "board: pool (per priority)": board.POOL,
        "board: pool total": board.POOL_TOTAL,
        "board: overdue, running": board.LATE_RUNNING,
        "board: overdue, on hold": board.LATE_HELD,
        "board: overdue totals": board.LATE_TOTAL,
        "board: due soon": board.DUE_SOON,
        "board: due soon total": board.DUE_SOON_TOTAL,
        "board: 上报件/联办件 under way": board.AT_DEPARTMENTS,
        "board: 上报件/联办件 total": board.AT_DEPARTMENTS_TOTAL,
        "board: agents and their load": board.AGENTS,
        "agent list": queries._list_statement("agent", False, False, False, None, False, False),
        "agent list, due first": queries._list_statement(
            "agent", False, False, False, None, True, False
        ),
    }
    list_params = {"scope": agent, "limit": 21, "now": now}

    def plans(session: Session) -> dict[str, list[str]]:
        return {
            name: plan(session, statement, list_params if "list" in name else params)
            for name, statement in statements.items()
        }

    for name, lines in (await ctx.db.run_read(plans)).items():
        print(f"\n{name}:")
        for line in lines:
            print(f"    {line}")
    await ctx.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
