"""The daily retention run with a fixed amount due, beside a growing amount stored (the
ratio should stay near 1: every step reads through an index of what may come due).

    .venv/bin/python bench/retention.py [--sizes 10000,1000000] [--due 200]

In process on a SQLite file, through the job function the scheduler runs (`tasks.retain`).
Each size stores that many ended orders with four files each (their files not yet due,
ended within the last 180 days) and as many audit rows of the last three years, plus
20,000 residents seen recently; then `--due` orders whose files are due (four files each,
real files in the local store), `--due` audit rows past three years and `--due` residents
unused for more than three years. The bare figure is a run on the same database with
nothing due, measured in the same process just after.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from dispatch import scratch_folder
from dispatch import settings as bench_settings

from app import migrate
from app.context import Context
from app.demo import seed_demo
from app.models import Account, CatalogueItem, Region
from app.models.tables import ACCOUNTS, AUDIT, ORDERS, UPLOADS
from jobs import tasks

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
FILES = 4
RESIDENTS = 20_000
CHUNK = 5_000


def fill(session: Session, stored: int, due: int) -> list[str]:
    """The rows; returns the keys of the due files, for the caller to write."""
    town = session.scalar(select(Region).where(Region.name == "西集镇"))
    assert town is not None
    village = session.scalar(select(Region.id).where(Region.town_id == town.id).limit(1))
    item = session.scalar(select(CatalogueItem).where(CatalogueItem.code == "RS-0001"))
    assert item is not None
    first_account = (session.scalar(select(func.max(Account.id))) or 0) + 1
    for start in range(0, RESIDENTS + due, CHUNK):
        rows = []
        for n in range(start, min(start + CHUNK, RESIDENTS + due)):
            unused = n >= RESIDENTS
            seen = NOW - timedelta(days=1200 if unused else n % 300)
            rows.append(
                {
                    "role": "resident",
                    "on_duty": False,
                    "last_seen_at": seen,
                    "created_at": seen,
                    "updated_at": seen,
                }
            )
        session.execute(insert(ACCOUNTS), rows)
    first_order = (session.scalar(select(func.max(ORDERS.c.id))) or 0) + 1
    due_keys: list[str] = []
    for start in range(0, stored + due, CHUNK):
        orders, uploads, audit = [], [], []
        for n in range(start, min(start + CHUNK, stored + due)):
            is_due = n >= stored
            ended = NOW - timedelta(days=200 if is_due else 1 + n % 170)
            resident = first_account + (n % RESIDENTS)
            order_id = first_order + n
            orders.append(
                {
                    "number": f"DB{20200101 + n // 900000:08d}{n % 900000:06d}",
                    "resident_id": resident,
                    "village_id": village,
                    "town_id": town.id,
                    "district_id": town.district_id,
                    "item_id": item.id,
                    "item_version_id": item.current_version_id,
                    "status": "closed",
                    "channel": "mini_program",
                    "green_channel": False,
                    "home_visit": False,
                    "priority": 0,
                    "materials": {},
                    "submitted_at": ended - timedelta(days=9),
                    "promised_days": 5,
                    "due_provisional": False,
                    "fees_collected_fen": 0,
                    "closed_at": ended,
                    "ended_at": ended,
                    "updated_at": ended,
                }
            )
            for f in range(FILES):
                key = f"materials/bench/{order_id}-{f}.jpg"
                if is_due:
                    due_keys.append(key)
                uploads.append(
                    {
                        "owner_id": resident,
                        "purpose": "material",
                        "status": "ready",
                        "declared_type": "image/jpeg",
                        "declared_size": 1000,
                        "incoming_key": f"incoming/bench/{order_id}-{f}",
                        "upload_expires_at": ended,
                        "key": key,
                        "order_id": order_id,
                        "created_at": ended,
                        "raw_cleared_at": ended,
                    }
                )
            age = timedelta(days=1200 if is_due else n % 1000)
            audit.append(
                {
                    "at": NOW - age,
                    "actor_role": "system",
                    "action": "bench",
                    "target": f"order:{order_id}",
                }
            )
        session.execute(insert(ORDERS), orders)
        session.execute(insert(UPLOADS), uploads)
        session.execute(insert(AUDIT), audit)
    return due_keys


async def measure(stored: int, due: int) -> tuple[float, float, int]:
    folder = scratch_folder("retention")
    ctx = Context.build(bench_settings(folder))
    ctx.now = lambda: NOW
    await migrate.upgrade(ctx.db)
    await ctx.db.run_write(lambda s: seed_demo(s, ctx))
    keys = await ctx.db.run_write(lambda s: fill(s, stored, due))
    for key in keys:
        await ctx.store.write(key, b"\xff\xd8 a photo", "image/jpeg")
    await ctx.db.run_write(lambda s: s.execute(text("ANALYZE")))
    started = time.perf_counter()
    handled = await tasks.retain(ctx)
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    again = await tasks.retain(ctx)
    bare = time.perf_counter() - started
    assert again == 0, again
    left = [key for key in keys if await ctx.store.stat(key) is not None]
    assert not left, f"{len(left)} due files left"
    await ctx.aclose()
    return elapsed, bare, handled


async def main(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    for size in sizes:
        print(f"filling {size:,} ended orders ({size * FILES:,} files), {args.due} of each due …")
        results[size] = await measure(size, args.due)
    base = results[sizes[0]][0]
    print(f"\n{'stored':>12} {'run s':>8} {'handled':>8} {'nothing due s':>14} {'× first':>8}")
    for size, (seconds, bare, handled) in results.items():
        print(f"{size:12,} {seconds:8.3f} {handled:8} {bare:14.4f} {seconds / base:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--due", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
