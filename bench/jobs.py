"""One reminder tick with 1,000 reminders due, beside 10,000 and then 1,000,000 orders (the
ratio should be near 1: a tick reads the due reminders through an index, never the orders
table); then WeChat delivery throughput against the local server that answers like WeChat.

    .venv/bin/python bench/jobs.py [--sizes 10000,1000000] [--due 1000] [--messages 2000]
        [--send-delay-ms 0] [--concurrency N] [--database-url postgresql+asyncpg://…]
        [--delivery-only] [--processes] [--workers 1,2] [--client-only]
        [--fake lean|threads]

In process on a SQLite file, through the same job functions the scheduler runs. Each order
has two handled reminders and one for later, as a live system would; the due ones are
督办 (overdue) reminders, each telling its agent and the town's two dispatchers and setting
the next day's reminder. Delivery runs on SQLite, or on the PostgreSQL given (its schema
emptied first), against the fake WeChat answering each send after --send-delay-ms, with
--concurrency messages in flight per worker (DAIBAN_SCHEDULER_DELIVERY_CONCURRENCY), with
its workers in this process or, with --processes, each in a process of its own as job
workers run. The fake WeChat is bench/lean_wechat.py (which also counts messages sent twice:
the run stops if there is one), or with --fake threads the test suite's server, which costs
several times the CPU a message on the same cores. Each run prints the workers' CPU a
message and the fake's. --client-only measures the WeChat client alone: --messages
subscription sends through app/wechat.py with --concurrency (default 32) in flight against
the fake WeChat, and the CPU each took in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _postgres
from dispatch import scratch_folder
from dispatch import settings as bench_settings

from app import migrate
from app.context import Context
from app.demo import seed_demo
from app.models import Account, CatalogueItem, Notification, Region, SubscriptionCredit
from app.models.tables import ORDERS, REMINDERS
from app.notifications import delivery
from app.notifications.outbox import Message, notify
from app.settings import WeChatSettings, load_settings
from app.wechat import LiveWeChat
from jobs import tasks

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai


def fill(session: Session, total: int, due: int) -> None:
    town = session.scalar(select(Region).where(Region.name == "西集镇"))
    assert town is not None
    agents = session.execute(
        select(Account.id, Account.region_id)
        .join(Region, Region.id == Account.region_id)
        .where(Region.town_id == town.id, Account.role == "agent")
    ).all()
    resident = session.scalar(select(Account.id).where(Account.openid == "dev_resident2"))
    item = session.scalar(select(CatalogueItem).where(CatalogueItem.code == "RS-0001"))
    assert item is not None
    rng = random.Random(3)
    start = session.scalar(select(func.coalesce(func.max(ORDERS.c.id), 0))) or 0
    for first in range(0, total, 5000):
        orders, reminders = [], []
        for n in range(first, min(first + 5000, total)):
            agent, village = agents[n % len(agents)]
            late = n < due
            due_at = NOW - timedelta(hours=10) if late else NOW + timedelta(days=rng.randint(1, 30))
            orders.append(
                {
                    "number": f"DB{20200101 + n // 900000:08d}{n % 900000:06d}",
                    "resident_id": resident,
                    "village_id": village,
                    "town_id": town.id,
                    "district_id": town.district_id,
                    "item_id": item.id,
                    "item_version_id": item.current_version_id,
                    "status": "accepted",
                    "channel": "mini_program",
                    "green_channel": False,
                    "home_visit": False,
                    "priority": 0,
                    "materials": {},
                    "agent_id": agent,
                    "submitted_at": NOW - timedelta(days=10),
                    "accepted_at": NOW - timedelta(days=9),
                    "promised_days": 5,
                    "due_at": due_at,
                    "due_provisional": False,
                    "fees_collected_fen": 0,
                    "updated_at": NOW,
                }
            )
            order_id = start + n + 1
            basis = due_at.isoformat()
            reminders += [
                {
                    "order_id": order_id,
                    "kind": "take_remind",
                    "basis": "x",
                    "due_at": NOW - timedelta(days=9),
                    "status": "done",
                },
                {
                    "order_id": order_id,
                    "kind": "take_escalate",
                    "basis": "x",
                    "due_at": NOW - timedelta(days=8),
                    "status": "done",
                },
                {
                    "order_id": order_id,
                    "kind": "overdue",
                    "basis": basis,
                    "due_at": NOW - timedelta(hours=1) if late else due_at + timedelta(hours=9),
                    "status": "pending",
                },
            ]
        session.execute(insert(ORDERS), orders)
        session.execute(insert(REMINDERS), reminders)


async def tick_time(total: int, due: int) -> tuple[float, int]:
    folder = scratch_folder("jobs")
    ctx = Context.build(bench_settings(folder))
    ctx.now = lambda: NOW
    await migrate.upgrade(ctx.db)
    await ctx.db.run_write(lambda s: seed_demo(s, ctx))
    await ctx.db.run_write(lambda s: fill(s, total, due))
    await ctx.db.run_write(lambda s: s.execute(text("ANALYZE")))
    started = time.perf_counter()
    handled = await tasks.remind(ctx)
    elapsed = time.perf_counter() - started
    await ctx.aclose()
    return elapsed, handled


class FakeServer:
    def __init__(self, url: str, pid: int) -> None:
        self.url, self.pid = url, pid

    def cpu(self) -> float:
        """The server process's CPU seconds so far (Linux's /proc; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def fake_wechat(delay: float = 0.0, lean: bool = True) -> Iterator[FakeServer]:
    """The local server answering like WeChat, in its own process (in this one it would
    share the GIL with the worker and measure itself), each send answered after `delay`
    seconds: bench/lean_wechat.py, or with `lean=False` the test suite's (several times
    the CPU a message)."""
    command = [str(Path(__file__).with_name("lean_wechat.py"))] if lean else ["-c", SERVE_FAKE]
    proc = subprocess.Popen(
        [sys.executable, *command, str(delay)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield FakeServer(proc.stdout.readline().strip(), proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


SERVE_FAKE = """
import sys, threading
from tests.wechat_server import FakeWeChat
with FakeWeChat() as fake:
    fake.send_delay = float(sys.argv[1])
    print(fake.base_url, flush=True)
    threading.Event().wait()
"""


async def delivery_rate(
    messages: int,
    workers: int,
    *,
    delay: float = 0.0,
    concurrency: int | None = None,
    database_url: str | None = None,
    processes: bool = False,
    lean: bool = True,
) -> tuple[float, float, float, dict[str, int]]:
    folder = scratch_folder("delivery")
    if database_url:
        await asyncio.to_thread(_postgres.reset, database_url)
    with fake_wechat(delay, lean) as fake:
        wechat_url = fake.url
        base = bench_settings(folder)
        env = {
            "DAIBAN_VAR_DIR": str(folder),
            "DAIBAN_DATABASE_URL": database_url or base.database_url,
            "DAIBAN_SECURITY_SECRET_KEY": base.security.secret_key,
            "DAIBAN_SECURITY_PII_KEYS": base.security.pii_keys,
            "DAIBAN_SECURITY_PII_HASH_KEY": base.security.pii_hash_key,
            "DAIBAN_SCHEDULER_MODE": "off",
            "DAIBAN_LOG_LEVEL": "WARNING",
            "DAIBAN_WECHAT_MODE": "live",
            "DAIBAN_WECHAT_APP_ID": "wx-bench",
            "DAIBAN_WECHAT_APP_SECRET": "wx-bench-secret",
            "DAIBAN_WECHAT_BASE_URL": wechat_url,
            **({"DAIBAN_SCHEDULER_DELIVERY_CONCURRENCY": str(concurrency)} if concurrency else {}),
            "DAIBAN_WECHAT_TEMPLATES": json.dumps(
                {
                    "accepted": {
                        "id": "TPL",
                        "fields": {"thing1": "item", "character_string2": "number"},
                    }
                }
            ),
        }
        ctx = Context.build(load_settings(env))
        await migrate.upgrade(ctx.db)
        people = 20

        def queue(session: Session) -> None:
            ids = []
            for p in range(people):
                account = Account(role="resident", openid=f"bench-{p}", name="测试", on_duty=False)
                session.add(account)
                session.flush()
                session.add(
                    SubscriptionCredit(account_id=account.id, template_id="TPL", credits=messages)
                )
                ids.append(account.id)
            now = ctx.now()
            for n in range(messages):
                message = Message(
                    "accepted",
                    "办件已受理",
                    "已受理",
                    {"item": "养老保险参保登记", "number": f"DB{n:08d}"},
                )
                notify(session, ctx, [ids[n % people]], message, f"bench:{n}", now)

        await ctx.db.run_write(queue)
        fake_started = fake.cpu()
        if processes:
            elapsed, cpu = await _drain_in_processes(env, workers)
        else:
            started, cpu_started = time.perf_counter(), time.process_time()
            await asyncio.gather(*(_drain(ctx, f"w{i}") for i in range(workers)))
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        fake_cpu = fake.cpu() - fake_started
        if lean:  # what WeChat was sent, by its own count
            async with httpx.AsyncClient() as client:
                stats = (await client.get(f"{wechat_url}/stats")).json()
            if stats["twice"]:
                raise SystemExit(f"the fake WeChat was sent {stats['twice']} message(s) twice")
        statuses = await ctx.db.run_read(
            lambda s: dict(
                s.execute(
                    select(Notification.wechat_status, func.count()).group_by(
                        Notification.wechat_status
                    )
                ).all()
            )
        )
        await ctx.aclose()
        return messages / elapsed, 1000 * cpu / messages, 1000 * fake_cpu / messages, statuses


async def _drain(ctx: Context, worker: str) -> None:
    # as the job runs it: claim after claim while the sends go on (jobs/tasks.py)
    while await delivery.deliver_due(ctx, worker, limit=50, batches=tasks.MAX_BATCHES):
        pass


async def _drain_in_processes(env: dict[str, str], workers: int) -> tuple[float, float]:
    """Seconds for `workers` processes of their own (as job workers run) to send every
    message, and the CPU seconds they used in all: each starts, says it is ready, and
    drains when all are told to go."""
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--drain-as",
            f"p{i}",
            env={**os.environ, **env},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for i in range(workers)
    ]
    for child in children:
        assert child.stdout is not None
        await child.stdout.readline()  # ready
    started = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    cpu = 0.0
    for child in children:
        assert child.stdout is not None
        cpu += float((await child.stdout.readline()).split()[1])  # drained <CPU seconds>
    elapsed = time.perf_counter() - started
    for child in children:
        if await child.wait():
            raise SystemExit(f"a delivery process failed ({child.returncode})")
    return elapsed, cpu


async def drain_as(worker: str) -> None:
    """A delivery process of `_drain_in_processes` (its settings from the environment)."""
    ctx = Context.build(load_settings(dict(os.environ)))
    await ctx.db.run_read(lambda s: s.scalar(select(func.count(Notification.id))))  # connect
    gc.freeze()  # as a job worker does once started (jobs/__main__.py)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    cpu_started = time.process_time()
    await _drain(ctx, worker)
    print("drained", time.process_time() - cpu_started, flush=True)
    await ctx.aclose()


async def client_cost(
    messages: int, delay: float, concurrency: int, lean: bool = True
) -> tuple[float, float]:
    """Messages a second and ms of this process's CPU a send, through LiveWeChat alone."""
    with fake_wechat(delay, lean) as fake:
        wechat_url = fake.url
        settings = WeChatSettings(
            mode="live",
            app_id="wx-bench",
            app_secret="wx-bench-secret",  # noqa: S106 (the fake WeChat's)
            base_url=wechat_url,
        )
        wechat = LiveWeChat(settings)
        gate = asyncio.Semaphore(concurrency)
        data = {"thing1": {"value": "养老保险参保登记"}, "character_string2": {"value": "DB1"}}

        async def one(n: int) -> None:
            async with gate:
                await wechat.send_subscription(f"bench-{n}", "TPL", "pages/x", data, "formal")

        await one(0)  # the token, and a first connection
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(n) for n in range(messages)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        await wechat.aclose()
    return messages / elapsed, 1000 * cpu / messages


async def main(args: argparse.Namespace) -> None:
    if args.client_only:
        for _ in range(args.rounds):
            delay, lean = args.send_delay_ms / 1000, args.fake == "lean"
            rate, cpu = await client_cost(args.messages, delay, args.concurrency or 32, lean)
            print(
                f"WeChat client alone, answering in {args.send_delay_ms:g} ms: {rate:,.0f}"
                f" sends/s, {cpu:.3f} ms of CPU a send"
            )
        return
    if args.drain_as:
        await drain_as(args.drain_as)
        return
    if args.delivery_only:
        await deliveries(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, tuple[float, int]] = {}
    for size in sizes:
        print(f"filling {size:,} orders, {args.due:,} of them with a reminder due …")
        results[size] = await tick_time(size, args.due)
    base = results[sizes[0]][0]
    print(f"\n{'orders':>12} {'tick s':>8} {'handled':>8} {'per reminder ms':>16} {'× first':>8}")
    for size, (seconds, handled) in results.items():
        each = 1000 * seconds / max(handled, 1)
        print(f"{size:12,} {seconds:8.3f} {handled:8} {each:16.2f} {seconds / base:8.2f}")
    await deliveries(args)


async def deliveries(args: argparse.Namespace) -> None:
    where = "PostgreSQL" if args.database_url else "SQLite"
    for workers in (int(n) for n in args.workers.split(",")):
        rate, cpu, fake_cpu, statuses = await delivery_rate(
            args.messages,
            workers,
            delay=args.send_delay_ms / 1000,
            concurrency=args.concurrency,
            database_url=args.database_url,
            processes=args.processes,
            lean=args.fake == "lean",
        )
        how = "each in a process of its own" if args.processes else "in one process"
        print(
            f"\ndelivery on {where}, WeChat answering in {args.send_delay_ms:g} ms, {workers}"
            f" worker(s) {how}: {rate:,.0f} messages/s {statuses},"
            f" {cpu:.2f} ms of the workers' CPU a message, {fake_cpu:.2f} ms of the fake"
            " WeChat's"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--send-delay-ms", type=float, default=0.0, help="WeChat's answer time")
    parser.add_argument("--concurrency", type=int, help="DAIBAN_SCHEDULER_DELIVERY_CONCURRENCY")
    parser.add_argument("--database-url", help="PostgreSQL to use (emptied first)")
    parser.add_argument("--delivery-only", action="store_true")
    parser.add_argument(
        "--processes", action="store_true", help="each delivery worker a process of its own"
    )
    parser.add_argument("--workers", default="1,2", help="delivery runs with these many workers")
    parser.add_argument(
        "--fake",
        choices=("lean", "threads"),
        default="lean",
        help="WeChat's stand-in: bench/lean_wechat.py, or the test suite's threading server",
    )
    parser.add_argument("--client-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="with --client-only")
    parser.add_argument("--drain-as", help=argparse.SUPPRESS)  # a process of --processes
    asyncio.run(main(parser.parse_args()))
