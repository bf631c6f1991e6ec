"""bench/orders.py's filling on PostgreSQL: the same copies as on SQLite, in PostgreSQL's SQL."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg

RESIDENTS = 20_000


def dsn(url: str) -> str:
    """asyncpg's own form of a SQLAlchemy URL (postgresql+asyncpg://…)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def reset(url: str) -> None:
    """An empty public schema: the service migrates and seeds it as it starts."""

    async def run() -> None:
        conn = await asyncpg.connect(dsn(url))
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()

    asyncio.run(run())


async def _columns(conn: Any, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
        "AND table_schema = 'public' ORDER BY ordinal_position",
        table,
    )
    return [r["column_name"] for r in rows]


def fill(url: str, template_id: int, total: int, events: int) -> None:
    asyncio.run(_fill(url, template_id, total, events))


async def _fill(url: str, template_id: int, total: int, events: int) -> None:
    conn = await asyncpg.connect(dsn(url))
    try:
        have = await conn.fetchval("SELECT count(*) FROM orders")
        if have >= total:
            return
        resident1, village = await conn.fetchrow(
            "SELECT resident_id, village_id FROM orders WHERE id = $1", template_id
        )
        async with conn.transaction():
            if not await conn.fetchval("SELECT count(*) FROM accounts WHERE name LIKE 'bench-%'"):
                await conn.execute(
                    """INSERT INTO accounts (role, name, region_id, on_duty, created_at, updated_at)
                    SELECT 'resident', 'bench-' || i, $1, true, a.created_at, a.updated_at
                    FROM generate_series(1, $2) i,
                         (SELECT created_at, updated_at FROM accounts WHERE id = $3) a""",
                    village,
                    RESIDENTS,
                    resident1,
                )
            first = await conn.fetchval("SELECT min(id) FROM accounts WHERE name LIKE 'bench-%'")
            last_with_events = await conn.fetchval("SELECT max(order_id) FROM order_events")
            cols = [
                c
                for c in await _columns(conn, "orders")
                if c not in ("id", "number", "resident_id")
            ]
            picked = ", ".join(f"t.{c}" for c in cols)
            picked = picked.replace("t.status", "'closed'").replace("t.idempotency_key", "NULL")
            await conn.execute(
                f"""INSERT INTO orders (number, resident_id, {", ".join(cols)})
                SELECT 'DB' || to_char(date '2020-01-01' + (i / 5000)::int, 'YYYYMMDD')
                            || lpad((i % 5000)::text, 6, '0'),
                       CASE WHEN i % 20000 = 0 THEN $1 ELSE $2 + i % $3 END,
                       {picked}
                FROM generate_series($4::bigint, $5::bigint) i, orders t WHERE t.id = $6""",
                resident1,
                first,
                RESIDENTS,
                have,
                total - 1,
                template_id,
            )
            event_cols = [
                c for c in await _columns(conn, "order_events") if c not in ("id", "order_id")
            ]
            await conn.execute(
                f"""INSERT INTO order_events (order_id, {", ".join(event_cols)})
                SELECT o.id, {", ".join(f"e.{c}" for c in event_cols)}
                FROM orders o, order_events e
                WHERE o.id > $1 AND e.order_id = $2 ORDER BY o.id, e.id""",
                last_with_events,
                template_id,
            )
            copied = await conn.fetchval(
                "SELECT count(*) FROM order_events WHERE order_id > $1", last_with_events
            )
            added = await conn.fetchval(
                "SELECT count(*) FROM orders WHERE id > $1", last_with_events
            )
            assert copied == events * added, (copied, added)
        # As autovacuum would have by the time a database holds this much: the visibility
        # map set and the statistics taken, and the fill's writes checkpointed, so that the
        # measurement that follows is not of the aftermath of a bulk load.
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def prepare_photos(url: str, template_id: int, sets: int, slots: int) -> list[list[int]]:
    return asyncio.run(_prepare_photos(url, template_id, sets, slots))


async def _prepare_photos(url: str, template_id: int, sets: int, slots: int) -> list[list[int]]:
    conn = await asyncpg.connect(dsn(url))
    try:
        cols = [c for c in await _columns(conn, "uploads") if c not in ("id", "order_id")]
        model = await conn.fetchval("SELECT min(id) FROM uploads WHERE order_id = $1", template_id)
        rows = await conn.fetch(
            f"""INSERT INTO uploads ({", ".join(cols)})
            SELECT {", ".join(f"u.{c}" for c in cols)}
            FROM generate_series(1, $1) i, uploads u WHERE u.id = $2 RETURNING id""",
            sets * slots,
            model,
        )
        # As autovacuum would soon: without it the planner, which saw no unattached photo
        # at the last ANALYZE, claims photos by scanning every unattached one.
        await conn.execute("ANALYZE uploads")
    finally:
        await conn.close()
    ids = sorted(r["id"] for r in rows)
    return [ids[i : i + slots] for i in range(0, len(ids), slots)]


# What each of the database's other sessions is doing, sampled: waiting for a lock (and
# which), for I/O, running ("CPU"), or inside a transaction waiting for its client's next
# statement ("client, in a transaction").
_SAMPLE = """
SELECT CASE
         WHEN state = 'active' AND wait_event IS NOT NULL
           THEN wait_event_type || ':' || wait_event
         WHEN state = 'active' THEN 'CPU'
         WHEN state LIKE 'idle in transaction%' THEN 'client, in a transaction'
       END AS what
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND (state = 'active' OR state LIKE 'idle in transaction%')
"""


@contextmanager
def sampled_waits(url: str, every: float = 0.005) -> Iterator[Counter[str]]:
    """While the block runs, sample every `every` seconds what the database's sessions are
    doing; the counter fills with sessions seen per state over all samples, plus
    `samples`, the number of samples taken."""
    seen: Counter[str] = Counter()
    stop = threading.Event()

    async def sample() -> None:
        conn = await asyncpg.connect(dsn(url))
        try:
            statement = await conn.prepare(_SAMPLE)
            while not stop.is_set():
                for row in await statement.fetch():
                    seen[row["what"]] += 1
                seen["samples"] += 1
                await asyncio.sleep(every)
        finally:
            await conn.close()

    thread = threading.Thread(target=lambda: asyncio.run(sample()), daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def describe_waits(seen: Counter[str]) -> str:
    """Sessions per sample in each state, busiest first."""
    samples = seen["samples"] or 1
    parts = [f"{what} {n / samples:.1f}" for what, n in seen.most_common() if what != "samples"]
    return ", ".join(parts) or "none"
