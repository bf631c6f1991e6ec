"""A simulated province in PostgreSQL, and what its people's screens and the jobs cost there:
each screen's reads per second beside a bare endpoint measured in the same run, a month's
ledger build of a town and a village, and a reminder tick.

    .venv/bin/python bench/province.py --database-url postgresql+asyncpg://…/prov_a
        [--scale 0.01] [--rounds 5] [--seconds 2] [--workers 1] [--connections 16]
        [--skip-generate] [--no-measure] [--check] [--seed 1] [--var-dir DIR]

Generation (everything in the database is dropped first; PostgreSQL only, as a superuser;
refused when the disk looks too small: --scale 1.0 leaves ~58 GiB): the real service
(`daiban serve`, this checkout's code) starts once on the empty database, migrates it and
loads the demo data, and resident1 makes a real order through the API as bench/orders.py
does (photos, 刘桂兰 assigned, a supplement, accepted). Around the demo district, kept as one
of them and grown to a district's size, come the province's others: at --scale 1.0, 100
districts, 1,500 towns (15 each), ~30,000 villages (10-30 a town), two agents per village
(A and B posts), two dispatchers per town, an admin per district, 10,000,000 residents
(half as many as orders: most have one or two, a few many) and 20,000,000 orders over the
three years ending now; --scale 0.01 is one district (the demo one, "county size": 15
towns, ~300 villages, ~600 agents, 200,000 orders). Villages differ in size (lognormal
weights), items in popularity (Zipf over the shipped catalogue), days in volume (working
days, holidays, the Spring Festival, the insurance months, growth over the years) and
hours (the working day). Each order lives through the transition table from submission to
where it stands now: pooled and dispatched by hand in a third of the towns, taken, a
quarter asked once for a supplement, accepted, a few put on hold, completed (6 % late),
handed back and rated (45 % by the resident, the rest by default after 7 days), or
withdrawn, expired, refused or terminated; so the last weeks hold orders in every running
status. With it: its timeline (order_events, the template order's notes and data with the
order's own people and times), its rating, the reminders a live system would still hold
(pending, due later), order-number counters, and for the last 30 days' orders the agent's
and the resident's messages. Not made: uploads (orders name the template's photos), ended
orders' fired reminders, complaints, rectifications, disputes, departments' progress steps.
The demo people see typical volumes: resident1 ten orders, agent1a the A post of the
median village, dispatcher1a's 店子镇 a town of average volume, the admin's 山亭区 1/100 of
the orders. The big tables lose their indexes while loading (their definitions read from
pg_indexes, made again after; only the primary keys that foreign keys need stay), the
loading session runs without foreign-key triggers (--check verifies every reference
afterwards: minutes at full scale), then VACUUM ANALYZE. Printed: each stage's time, and
each table's rows and sizes.

Measures, against the service (one granian worker by default; --workers N) at 16
connections, the endpoints interleaved over --rounds rounds of --seconds each and the
median round kept: GET /healthz (bare); resident1's GET /mp/v1/orders?limit=20; agent1a's
GET /mp/v1/agent/orders?limit=20, and with &sort=due; dispatcher1a's GET
/mp/v1/dispatch/board; the admin's GET /mp/v1/admin/stats for last month and for the twelve
months before this one. Each also alone first (one request at a time, the median of three);
one slower alone than --seconds is measured in the first round only, one request per
connection. Only 2xx answers count; any other is printed and makes the run exit with status
1. Then in process, with the service stopped: last month's ledger (app/ledger/files.py:
build_ledger: the figures, the order register, the work log and the ratings sheet, the
.xlsx, its storage and its row) of 店子镇 and of 店子村, three builds each (the previous
build's row removed first), and from them the nightly job's time for every town and
village; and the reminder tick (jobs/tasks.py: remind) three times, each after bringing the
next day's pending reminders (at most the 5,000 a tick handles) forward to now, as a
working morning finds them; a tick whose run records an error fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# After the repository: bench/jobs.py must not stand for the jobs package.
sys.path.append(str(Path(__file__).resolve().parent))
import _postgres
import _province
from _load import Result, hammer, median, request_bytes
from _service import login, service

from app.context import Context
from app.ledger import files as ledger_files
from app.models import Account, JobRun, Ledger, Region, Reminder
from app.settings import RetentionSettings, load_settings
from jobs import due_reminders, tasks

ROOT = Path(__file__).resolve().parent.parent
TICK_MOST = tasks.MAX_BATCHES * due_reminders.BATCH  # what one tick handles at most
IN_PROCESS_RUNS = 3


def say(line: str) -> None:
    print(line, flush=True)


# --- generation --------------------------------------------------------------------------


async def load(args: argparse.Namespace, template_id: int) -> _province.Province:
    conn = await _province.connect(args.database_url)
    try:
        p = await _province.plan_province(conn, args.scale, args.seed)
        timer = _province.Timer(p, say)
        villages = len(p.villages)
        say(
            f"  the province: {len(p.districts):,} districts, {len(p.towns):,} towns, "
            f"{villages:,} villages, {p.orders:,} orders planned"
        )
        children = await _province.template_children(conn, template_id)
        saved = await _province.drop_indexes(conn)
        await timer.run("regions, staff, enablements", _province.write_structure(conn, p))
        await _province.write_villages_table(conn, p)
        await timer.run("residents", _province.write_residents(conn, p, say))
        files_days = RetentionSettings().order_files_days

        async def orders() -> int:
            counts = await _province.write_orders(
                conn, p, datetime.now(UTC), 2, template_id, args.seed, files_days, say
            )
            say("    " + ", ".join(f"{table} {n:,}" for table, n in counts.items()))
            return counts["orders"]

        await timer.run("orders, timelines, ratings, reminders, messages", orders())
        await _province.renumber_template(conn, template_id, children)
        started = time.perf_counter()
        await _province.create_indexes(conn, saved, timer, say)
        p.stages.append(_province.Stage("indexes (all)", time.perf_counter() - started))
        say(f"  indexes (all): {p.stages[-1].seconds:.1f} s")
        await _province.set_sequences(conn)  # max(id) through the primary keys made again
        for openid, count in (
            ("dev_resident1", _province.RESIDENT1_ORDERS),
            ("dev_resident2", _province.RESIDENT2_ORDERS),
        ):
            await _province.give_history(conn, openid, count)

        async def vacuum() -> int:
            await conn.execute("VACUUM ANALYZE")
            return 0

        await timer.run("VACUUM ANALYZE", vacuum())
        if args.check:

            async def check() -> int:
                broken = await _province.check_references(conn)
                for line in broken:
                    say(f"    broken reference: {line}")
                if broken:
                    raise SystemExit("the generated rows break foreign keys (see above)")
                return 0

            await timer.run("references checked", check())
        return p
    finally:
        await conn.close()


async def check_space(args: argparse.Namespace) -> None:
    conn = await _province.connect(args.database_url)
    try:
        need, free = await _province.space_needed(conn, round(_province.FULL_ORDERS * args.scale))
    finally:
        await conn.close()
    if free is None:
        say(f"  needs about {_province.gib(need)} of disk (PostgreSQL's not seen from here)")
        return
    say(f"  needs about {_province.gib(need)} of disk at its peak; {_province.gib(free)} free")
    if need > 0.9 * free:
        raise SystemExit(
            f"not enough disk for --scale {args.scale:g}: about {_province.gib(need)} needed, "
            f"{_province.gib(free)} free (--no-space-check to try anyway)"
        )


def generate(args: argparse.Namespace, var: Path) -> _province.Province:
    if not args.no_space_check:
        asyncio.run(check_space(args))
    started = time.perf_counter()
    _postgres.reset(args.database_url)
    from orders import template_order  # bench/orders.py: it puts bench/ first on the path

    env = {"DAIBAN_DATABASE_URL": args.database_url}
    with service(var, **env) as (base, _):
        template_id, _slots = template_order(base)
    setup = time.perf_counter() - started
    say(f"  schema, demo data and the template order through the service: {setup:.1f} s")
    p = asyncio.run(load(args, template_id))
    p.stages.insert(0, _province.Stage("schema, demo, template order", setup))
    p.stages.append(_province.Stage("total", time.perf_counter() - started))
    return p


# --- what the generated data looks like --------------------------------------------------


async def describe(url: str) -> None:
    conn = await _province.connect(url)
    try:
        levels = await conn.fetch("SELECT level, count(*) FROM regions GROUP BY 1 ORDER BY 2")
        roles = await conn.fetch("SELECT role, count(*) FROM accounts GROUP BY 1 ORDER BY 2")
        say("  regions: " + ", ".join(f"{r['level']} {r['count']:,}" for r in levels))
        say("  accounts: " + ", ".join(f"{r['role']} {r['count']:,}" for r in roles))
        rows = await conn.fetch(
            f"""SELECT to_char(submitted_at AT TIME ZONE '{_province.ZONE}', 'YYYY-MM') AS month,
                status, count(*) FROM orders GROUP BY 1, 2"""
        )
        by_month: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        recent: dict[str, Counter[str]] = {}
        for r in rows:
            by_month[r["month"]] += r["count"]
            by_status[r["status"]] += r["count"]
            recent.setdefault(r["month"], Counter())[r["status"]] += r["count"]
        total = sum(by_status.values())
        say(
            f"  orders {total:,}: "
            + ", ".join(f"{s} {n:,} ({n / total:.1%})" for s, n in by_status.most_common())
        )
        say("  orders per month: " + ", ".join(f"{m} {n:,}" for m, n in sorted(by_month.items())))
        for month in sorted(recent)[-2:]:
            mix = recent[month]
            say(f"  {month} by status: " + ", ".join(f"{s} {n:,}" for s, n in mix.most_common()))
        demo = await conn.fetchrow(
            """SELECT
              (SELECT count(*) FROM orders WHERE resident_id =
                 (SELECT id FROM accounts WHERE openid = 'dev_resident1')) AS resident1,
              (SELECT count(*) FROM orders WHERE agent_id =
                 (SELECT id FROM accounts WHERE openid = 'dev_agent1a')) AS agent1a,
              (SELECT count(*) FROM orders WHERE agent_id =
                 (SELECT id FROM accounts WHERE openid = 'dev_agent1a')
                 AND status NOT IN ('closed', 'rejected', 'cancelled')) AS agent1a_open,
              (SELECT count(*) FROM orders WHERE town_id =
                 (SELECT region_id FROM accounts WHERE openid = 'dev_dispatcher1a')) AS town,
              (SELECT count(*) FROM orders WHERE town_id =
                 (SELECT region_id FROM accounts WHERE openid = 'dev_dispatcher1a')
                 AND status NOT IN ('closed', 'rejected', 'cancelled')) AS town_open,
              (SELECT count(*) FROM orders WHERE district_id =
                 (SELECT region_id FROM accounts WHERE openid = 'dev_admin')) AS district,
              (SELECT count(*) FROM ratings) AS ratings,
              (SELECT count(*) FROM reminders WHERE status = 'pending') AS pending,
              (SELECT count(*) FROM regions WHERE level = 'town') AS towns,
              (SELECT count(*) FROM accounts WHERE role = 'agent') AS agents"""
        )
        say(
            f"  resident1 {demo['resident1']} orders; agent1a {demo['agent1a']:,} "
            f"({demo['agent1a_open']} open; an agent's mean {total / demo['agents']:,.0f}); "
            f"dispatcher1a's town {demo['town']:,} ({demo['town_open']:,} open; a town's mean "
            f"{total / demo['towns']:,.0f}); the admin's district {demo['district']:,} "
            f"({demo['district'] / total:.1%}); ratings {demo['ratings']:,}; "
            f"reminders pending {demo['pending']:,}"
        )
    finally:
        await conn.close()


async def table_sizes(url: str) -> list[tuple[str, int, int, int]]:
    conn = await _province.connect(url)
    try:
        return await _province.sizes(conn)
    finally:
        await conn.close()


# --- measures ----------------------------------------------------------------------------


def last_month(today: date) -> tuple[date, date]:
    first = ledger_files.previous_month(today)
    return first, today.replace(day=1) - timedelta(days=1)


def endpoints(base: str, today: date) -> dict[str, tuple[str, dict[str, str]]]:
    """Each measure's path and headers, as its person sends it."""
    resident, agent = login(base, "resident1"), login(base, "agent1a")
    dispatcher, admin = login(base, "dispatcher1a"), login(base, "admin")
    start, end = last_month(today)
    if end.month == 12:
        year_start = date(end.year, 1, 1)
    else:
        year_start = date(end.year - 1, end.month + 1, 1)
    return {
        "bare GET /healthz": ("/healthz", {}),
        "resident1 GET /orders?limit=20": ("/mp/v1/orders?limit=20", resident),
        "agent1a GET /agent/orders?limit=20": ("/mp/v1/agent/orders?limit=20", agent),
        "agent1a … &sort=due": ("/mp/v1/agent/orders?limit=20&sort=due", agent),
        "dispatcher1a GET /dispatch/board": ("/mp/v1/dispatch/board", dispatcher),
        f"admin GET /admin/stats {start:%Y-%m}": (
            f"/mp/v1/admin/stats?from={start}&to={end}",
            admin,
        ),
        f"admin GET /admin/stats {year_start:%Y-%m}–{end:%Y-%m}": (
            f"/mp/v1/admin/stats?from={year_start}&to={end}",
            admin,
        ),
    }


def alone(base: str, path: str, headers: dict[str, str]) -> tuple[float, int]:
    """One request at a time: the median of three, in ms, and how many were not 2xx."""
    times, failed = [], 0
    with httpx.Client(timeout=1800) as client:
        for _ in range(3):
            started = time.perf_counter()
            answer = client.get(base + path, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            if not answer.is_success:
                failed += 1
                say(f"    {path}: {answer.status_code} {answer.text[:300]}")
    return statistics.median(times), failed


def measure_http(
    base: str, args: argparse.Namespace
) -> tuple[dict[str, list[Result]], dict[str, float], int]:
    today = datetime.now(ZoneInfo(_province.ZONE)).date()
    paths = endpoints(base, today)
    requests = {name: request_bytes("GET", base + path, who) for name, (path, who) in paths.items()}
    errors = 0
    single: dict[str, float] = {}
    for name, (path, who) in paths.items():
        single[name], failed = alone(base, path, who)
        errors += failed
        say(f"  {name:<44} alone {single[name]:>9.1f} ms")
    c, s = args.connections, args.seconds
    hammer(base, lambda n: requests["bare GET /healthz"], connections=c, seconds=1)  # warm up

    def load_of(raw: bytes, slow: bool) -> Callable[[], Result]:
        limit = c if slow else None
        return lambda: hammer(base, lambda n: raw, connections=c, seconds=s, limit=limit)

    # An endpoint slower alone than a round's --seconds is measured once, one request per
    # connection: at full scale a district's figures take minutes under 16 at once.
    slow = {name for name, ms in single.items() if ms > s * 1000}
    for name in slow:
        say(f"  {name}: slower alone than {s:g} s, measured once, {c} requests at once")
    runs = {name: load_of(raw, name in slow) for name, raw in requests.items()}
    # Rounds interleave the endpoints and the median round is kept (bench/orders.py): this
    # machine's speed drifts from minute to minute.
    rounds: dict[str, list[Result]] = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, run in runs.items():
            if r == 0 or name not in slow:
                rounds[name].append(run())
        say(f"  round {r + 1} of {args.rounds} done")
    return rounds, single, errors


def settings_env(args: argparse.Namespace, var: Path) -> dict[str, str]:
    """The service's own settings (bench/_service.py), for work done in this process."""
    return {
        "DAIBAN_VAR_DIR": str(var),
        "DAIBAN_DATABASE_URL": args.database_url,
        "DAIBAN_SCHEDULER_MODE": "off",
        "DAIBAN_LOG_LEVEL": "WARNING",
        "DAIBAN_STORAGE_PUBLIC_URL": "http://127.0.0.1:8000",
    }


async def in_process(args: argparse.Namespace, var: Path) -> dict[str, tuple[float, str]]:
    """Ledger builds and reminder ticks, each the median of IN_PROCESS_RUNS, in ms, with
    what each handled."""
    ctx = Context.build(load_settings(settings_env(args, var)))
    await ctx.store.ensure_ready()
    gc.freeze()  # as a job worker does once started (jobs/__main__.py)
    out: dict[str, tuple[float, str]] = {}
    try:
        month = ledger_files.previous_month(ctx.today())

        def demo_regions(session: Any) -> tuple[Any, Any]:
            dispatcher = session.scalar(
                select(Account.region_id).where(Account.openid == "dev_dispatcher1a")
            )
            agent = session.scalar(select(Account.region_id).where(Account.openid == "dev_agent1a"))
            return session.get(Region, dispatcher), session.get(Region, agent)

        town, village = await ctx.db.run_read(demo_regions)
        for region in (town, village):
            times, rows = [], 0
            same = (Ledger.region_id == region.id, Ledger.month == month)

            def forget(session: Any, same: tuple[Any, ...] = same) -> None:
                session.execute(delete(Ledger).where(*same))

            def rows_of(session: Any, same: tuple[Any, ...] = same) -> int:
                return int(session.scalar(select(Ledger.orders).where(*same)) or 0)

            for _ in range(IN_PROCESS_RUNS):
                await ctx.db.run_write(forget)  # else a frozen version would stand
                started = time.perf_counter()
                built = await ledger_files.build_ledger(ctx, region.id, month)
                times.append((time.perf_counter() - started) * 1000)
                if not built:
                    raise SystemExit(f"the ledger of {region.name} {month:%Y-%m} was not built")
                rows = await ctx.db.run_read(rows_of)
            name = f"ledger build {region.name} {month:%Y-%m} ({region.level})"
            out[name] = (statistics.median(times), f"{rows:,} orders")
            say(f"  {name}: {', '.join(f'{t:.0f}' for t in times)} ms")

        day_ahead = await ctx.db.run_read(
            lambda s: s.scalar(
                text(
                    "SELECT count(*) FROM reminders WHERE status = 'pending' "
                    "AND due_at <= now() + interval '1 day'"
                )
            )
        )
        batch = min(TICK_MOST, max(1, int(day_ahead or 0)))
        times, handled = [], []
        for _ in range(IN_PROCESS_RUNS):
            now = ctx.now()

            def bring_forward(session: Any, now: datetime = now) -> None:
                due = (
                    select(Reminder.id)
                    .where(Reminder.status == "pending")
                    .order_by(Reminder.due_at, Reminder.id)
                    .limit(batch)
                )
                session.execute(
                    update(Reminder)
                    .where(Reminder.id.in_(due.scalar_subquery()))
                    .values(due_at=now - timedelta(seconds=1))
                    .execution_options(synchronize_session=False)
                )

            await ctx.db.run_write(bring_forward)
            started = time.perf_counter()
            handled.append(await tasks.remind(ctx))
            times.append((time.perf_counter() - started) * 1000)
            error = await ctx.db.run_read(
                lambda s: s.scalar(
                    select(JobRun.error)
                    .where(JobRun.job == "reminders")
                    .order_by(JobRun.id.desc())
                    .limit(1)
                )
            )
            if error:
                raise SystemExit(f"the reminder tick failed: {error}")
        name = "reminder tick (jobs/tasks.py: remind)"
        out[name] = (statistics.median(times), f"{statistics.median(handled):,.0f} reminders")
        say(f"  {name}: {', '.join(f'{t:.0f}' for t in times)} ms, handled {handled}")
        regions: dict[str, int] = await ctx.db.run_read(
            lambda s: dict(
                s.execute(
                    text(
                        "SELECT level, count(*) FROM regions WHERE level <> 'district' "
                        "GROUP BY level"
                    )
                ).all()
            )
        )
        town_ms = out[f"ledger build {town.name} {month:%Y-%m} (town)"][0]
        village_ms = out[f"ledger build {village.name} {month:%Y-%m} (village)"][0]
        nightly = (regions["town"] * town_ms + regions["village"] * village_ms) / 1000
        say(
            f"  the nightly ledger job builds every town and village of the database: "
            f"{regions['town']:,} × {town_ms:.0f} ms + {regions['village']:,} × "
            f"{village_ms:.0f} ms ≈ {nightly / 60:,.1f} min a night, one after another "
            "(every night until the 10th, while last month's ledgers are provisional)"
        )
        out["nightly ledger job, estimated"] = (nightly * 1000, f"{sum(regions.values()):,} files")
    finally:
        await ctx.aclose()
    return out


# --- the report --------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    p: _province.Province | None,
    sized: list[tuple[str, int, int, int]],
    table: dict[str, Result],
    single: dict[str, float],
    jobs: dict[str, tuple[float, str]],
) -> None:
    if table:
        workers = "one granian worker" if args.workers == 1 else f"{args.workers} granian workers"
        say(
            f"\n{make_url(args.database_url).database}: {workers}, {args.connections} "
            f"connections; median of {args.rounds} rounds of {args.seconds:g} s per endpoint"
        )
        bare = table["bare GET /healthz"].rate
        say(f"{'':<46}{'per second':>12}{'of bare':>10}{'alone':>12}")
        for name, result in table.items():
            rate = f"{result.rate:>10,.0f}/s{result.rate / bare:>10.1%}"
            say(f"{name:<46}{rate}{single[name]:>9.1f} ms")
    if jobs:
        say(f"\nin process, median of {IN_PROCESS_RUNS}:")
        for name, (ms, what) in jobs.items():
            took = f"{ms:>9,.0f} ms" if ms < 60_000 else f"{ms / 60_000:>8,.1f} min"
            say(f"  {name:<52}{took}  ({what})")
    if p is not None:
        say(f"\ngeneration at scale {args.scale:g}:")
        for stage in p.stages:
            if not stage.name.startswith("index "):
                made = f"  {stage.rows:,} rows" if stage.rows else ""
                say(f"  {stage.name:<52}{stage.seconds:>9,.1f} s{made}")
    say("\ntables:")
    say(f"  {'':<24}{'rows':>14}{'table':>12}{'indexes':>12}")
    for name, rows, heap, indexes in sized:
        say(f"  {name:<24}{rows:>14,}{_province.gib(heap):>12}{_province.gib(indexes):>12}")
    total = sum(h + i for _, _, h, i in sized)
    say(f"  {'all of these':<24}{'':>14}{_province.gib(total):>24}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        required=True,
        help="postgresql+asyncpg://… of a database of its own: everything in it is dropped",
    )
    parser.add_argument("--scale", type=float, default=0.01, help="1.0: 20,000,000 orders")
    parser.add_argument("--seconds", type=float, default=2.0, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="granian worker processes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--skip-generate", action="store_true", help="measure the database as it is again"
    )
    parser.add_argument(
        "--check", action="store_true", help="after loading, verify every foreign key"
    )
    parser.add_argument("--no-measure", action="store_true", help="generate and describe only")
    parser.add_argument(
        "--no-space-check",
        action="store_true",
        help="generate even when the disk looks too small for the scale",
    )
    parser.add_argument(
        "--var-dir",
        type=Path,
        help="the service's files (its dev keys match the database's): default "
        "var/province-<database>",
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url: PostgreSQL only (postgresql+asyncpg://…)")
    database = make_url(args.database_url).database
    var = args.var_dir or ROOT / "var" / f"province-{database}"
    var.mkdir(parents=True, exist_ok=True)
    p = None
    if not args.skip_generate:
        say(f"generating at scale {args.scale:g} into {database} …")
        p = generate(args, var)
    elif not (var / "dev-secrets.json").exists():
        parser.error(f"--skip-generate: {var} has not the keys of {database}; generate first")
    say("the data:")
    started = time.perf_counter()
    asyncio.run(describe(args.database_url))
    say(f"  (described in {time.perf_counter() - started:.1f} s)")
    sized = asyncio.run(table_sizes(args.database_url))
    if args.no_measure:
        report(args, p, sized, {}, {}, {})
        return
    say("measuring through the service …")
    env = {"DAIBAN_DATABASE_URL": args.database_url, "DAIBAN_SERVER_WORKERS": str(args.workers)}
    with service(var, **env) as (base, _):
        rounds, single, errors = measure_http(base, args)
    table = {name: median(results) for name, results in rounds.items()}
    for name, results in rounds.items():
        statuses = sum((r.statuses for r in results), Counter[int]())
        errors += sum(r.errors for r in results)
        if any(not 200 <= status < 300 for status in statuses):
            say(f"  {name}: answers {dict(statuses)}")
    say("measuring in process …")
    jobs = asyncio.run(in_process(args, var))
    report(args, p, sized, table, single, jobs)
    if errors:
        say(f"\n{errors} answers were not 2xx (left out of the rates): see above")
        sys.exit(1)


if __name__ == "__main__":
    main()
