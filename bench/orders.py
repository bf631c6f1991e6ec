"""Orders at 10,000 and 1,000,000: submissions, a resident's list and an order's detail per
second, each beside a bare endpoint measured in the same run.

    .venv/bin/python bench/orders.py [--sizes 10000,1000000] [--rounds 5] [--seconds 2]
        [--database-url postgresql+asyncpg://… (emptied first)] [--workers 1]

The real service runs with one granian worker on SQLite (`daiban serve`, this checkout's
code). A first run makes a real order through the API as its people do: resident1 submits
it with photos (uploaded, verified, attached), the dispatcher assigns it to 刘桂兰, she takes
it and asks for one material again, resident1 supplements it and she accepts it: an accepted
order with an agent and a timeline of seven events, the order whose detail is measured. The
database is then filled with copies of it (archived, each with those seven events), spread
over 20,000 residents, and ready photos are prepared so that every timed submission attaches
four real uploads as the phone does. Then, for each size: GET /healthz (bare), POST
/mp/v1/orders (each with its own Idempotency-Key), GET /mp/v1/orders?limit=20 and GET
/mp/v1/orders/{id} as resident1. Only 2xx answers count towards a rate; any other answer is
reported beside it (and makes the run exit with status 1). Printed with the submissions:
the CPU time each took in the service, in PostgreSQL's sessions (when it runs on this
machine) and in the load generator, and how busy the whole machine was; on PostgreSQL, what
its sessions were doing meanwhile (sampled: waiting for a lock, and which, running, or in a
transaction waiting for the service's next statement).
Targets: >= 1,000 submissions/s, >= 2,000 list reads/s, and the figures at
1,000,000 orders within 20 % of those at 10,000.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import httpx
from PIL import Image
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _postgres
from _load import Result, hammer, median, request_bytes
from _service import login, service

ITEM = "RS-0001"
RESIDENTS = 20_000
EVENTS = 7  # submit, pool, assign, take, request_supplement, supplement, accept


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((640, 480)).convert("RGB").save(out, "JPEG")
    return out.getvalue()


def upload(client: httpx.Client, base: str, headers: dict[str, str]) -> int:
    data = jpeg()
    ticket = client.post(
        f"{base}/mp/v1/uploads",
        json={"purpose": "material", "contentType": "image/jpeg", "size": len(data)},
        headers=headers,
    ).json()
    files = {ticket["fileField"]: ("photo.jpg", data, "image/jpeg")}
    client.post(ticket["url"], data=ticket["fields"], files=files).raise_for_status()
    client.post(f"{base}/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    return int(ticket["id"])


def template_order(base: str) -> tuple[int, list[str]]:
    """One order made the way its people make it, up to acceptance; returns its id and the
    required slots."""
    headers = login(base, "resident1")
    dispatcher, agent = login(base, "dispatcher1a"), login(base, "agent1a")
    with httpx.Client(timeout=30) as client:
        guide = client.get(f"{base}/mp/v1/catalogue/items/{ITEM}").json()
        slots = [m["code"] for m in guide["materials"] if m["required"]]
        materials = {code: [upload(client, base, headers)] for code in slots}
        order = client.post(
            f"{base}/mp/v1/orders",
            json={"itemCode": ITEM, "materials": materials},
            headers={**headers, "Idempotency-Key": "bench-template"},
        )
        order.raise_for_status()
        order_id = int(order.json()["id"])
        agents = client.get(f"{base}/mp/v1/dispatch/agents", headers=dispatcher).json()
        liu = next(a["id"] for a in agents if a["name"] == "刘桂兰")
        again = slots[1]
        steps = [
            ("dispatch", "assign", {"agentId": liu}, dispatcher),
            ("agent", "take", {}, agent),
            (
                "agent",
                "request-supplement",
                {"missing": [{"code": again, "reason": "看不清"}]},
                agent,
            ),
            ("", "supplement", {"materials": {again: [upload(client, base, headers)]}}, headers),
            ("agent", "accept", {}, agent),
        ]
        for role, action, body, who in steps:
            prefix = f"{base}/mp/v1/{role}/orders" if role else f"{base}/mp/v1/orders"
            client.post(f"{prefix}/{order_id}/{action}", json=body, headers=who).raise_for_status()
        detail = client.get(f"{base}/mp/v1/orders/{order_id}", headers=headers).json()
        assert detail["status"] == "accepted" and detail["agent"]["name"] == "刘桂兰", detail
        assert len(detail["timeline"]) == EVENTS, detail["timeline"]
        return order_id, slots


def columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def fill(path: Path, template_id: int, total: int) -> None:
    """Copy the template order until the table holds `total` orders (past dates, own numbers,
    archived), each with the template's timeline.

    Every 20,000th order belongs to resident1, the rest to generated residents of the same
    village, so resident1's list is a real slice of a big table, not the whole of it.
    """
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    have = db.execute("SELECT count(*) FROM orders").fetchone()[0]
    if have >= total:
        return
    resident1, village = db.execute(
        "SELECT resident_id, village_id FROM orders WHERE id = ?", (template_id,)
    ).fetchone()
    db.execute("BEGIN")
    generated = db.execute("SELECT count(*) FROM accounts WHERE name LIKE 'bench-%'").fetchone()[0]
    if not generated:
        db.execute(
            """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO accounts (role, name, region_id, on_duty, created_at, updated_at)
            SELECT 'resident', 'bench-' || i, ?, 1, created_at, updated_at
            FROM n, (SELECT created_at, updated_at FROM accounts WHERE id = ?)""",
            (RESIDENTS, village, resident1),
        )
    first_generated = db.execute(
        "SELECT min(id) FROM accounts WHERE name LIKE 'bench-%'"
    ).fetchone()[0]
    last_with_events = db.execute("SELECT max(order_id) FROM order_events").fetchone()[0]
    order_cols = [c for c in columns(db, "orders") if c not in ("id", "number", "resident_id")]
    select_cols = ", ".join(f"t.{c}" for c in order_cols)
    select_cols = select_cols.replace("t.status", "'closed'").replace("t.idempotency_key", "NULL")
    db.execute(
        f"""WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO orders (number, resident_id, {", ".join(order_cols)})
        SELECT 'DB' || strftime('%Y%m%d', date('2020-01-01', '+' || (i / 5000) || ' days'))
                    || printf('%06d', i % 5000),
               CASE WHEN i % 20000 = 0 THEN ? ELSE ? + i % ? END,
               {select_cols}
        FROM n, orders t WHERE t.id = ?""",
        (have, total - 1, resident1, first_generated, RESIDENTS, template_id),
    )
    event_cols = [c for c in columns(db, "order_events") if c not in ("id", "order_id")]
    db.execute(
        f"""INSERT INTO order_events (order_id, {", ".join(event_cols)})
        SELECT o.id, {", ".join(f"e.{c}" for c in event_cols)}
        FROM orders o, order_events e
        WHERE o.id > ? AND e.order_id = ? ORDER BY o.id, e.id""",
        (last_with_events, template_id),
    )
    copied = db.execute(
        "SELECT count(*) FROM order_events WHERE order_id > ?", (last_with_events,)
    ).fetchone()[0]
    added = db.execute("SELECT count(*) FROM orders WHERE id > ?", (last_with_events,)).fetchone()[
        0
    ]
    assert copied == EVENTS * added, (copied, added)
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()


def prepare_photos(path: Path, template_id: int, sets: int, slots: int) -> list[list[int]]:
    """Ready, unattached photos of resident1, `slots` per submission, copied from real ones."""
    db = sqlite3.connect(path, isolation_level=None)
    cols = [c for c in columns(db, "uploads") if c not in ("id", "order_id")]
    model = db.execute("SELECT min(id) FROM uploads WHERE order_id = ?", (template_id,)).fetchone()
    start = db.execute("SELECT max(id) FROM uploads").fetchone()[0] + 1
    db.execute("BEGIN")
    db.execute(
        f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO uploads ({", ".join(cols)}) SELECT {", ".join(f"u.{c}" for c in cols)}
        FROM n, uploads u WHERE u.id = ?""",
        (sets * slots, model[0]),
    )
    db.execute("COMMIT")
    db.close()
    ids = list(range(start, start + sets * slots))
    return [ids[i : i + slots] for i in range(0, len(ids), slots)]


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (0 when it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def processes(worker: int, database: str | None) -> dict[str, set[int]]:
    """The service's processes (`daiban serve` and its workers) and, when PostgreSQL runs on
    this machine, its sessions of `database`."""
    parent = int(Path(f"/proc/{worker}/stat").read_text().rpartition(")")[2].split()[1])
    serve = worker if parent == os.getpid() else parent  # `worker` is `daiban serve` itself
    found = {
        "service": {
            serve,
            *map(int, (Path(f"/proc/{serve}/task/{serve}/children").read_text().split())),
        }
    }
    if database:
        found["PostgreSQL"] = set()
        for entry in Path("/proc").iterdir():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"postgres: ") and f" {database} ".encode() in command:
                found["PostgreSQL"].add(int(entry.name))
    return found


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy so far."""
    times = [int(t) for t in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(times) - times[3] - times[4]) / TICK  # less idle and iowait


class CpuDuring:
    """CPU seconds spent while submissions run: the service, PostgreSQL's sessions, this
    process (the load generator) and the whole machine, summed over rounds."""

    def __init__(self, worker: int, database: str | None) -> None:
        self.worker, self.database = worker, database
        self.spent: Counter[str] = Counter()

    @contextmanager
    def during(self) -> Iterator[None]:
        before = processes(self.worker, self.database)
        start = {name: {pid: cpu_seconds(pid) for pid in pids} for name, pids in before.items()}
        mine, machine, wall = time.process_time(), machine_busy(), time.perf_counter()
        yield
        for name, pids in processes(self.worker, self.database).items():
            for pid in pids | before[name]:  # a session opened meanwhile started from 0
                self.spent[name] += cpu_seconds(pid) - start[name].get(pid, 0.0)
        self.spent["load generator"] += time.process_time() - mine
        self.spent["machine"] += machine_busy() - machine
        self.spent["wall"] += time.perf_counter() - wall

    def describe(self, requests: int) -> str:
        each = ", ".join(
            f"{name} {self.spent[name] / requests * 1000:.2f} ms"
            for name in ("service", "PostgreSQL", "load generator")
            if name in self.spent
        )
        busy = self.spent["machine"] / self.spent["wall"]
        return f"{each}; the machine was busy {busy:.2f} of its {os.cpu_count()} cores"


def submitter(
    base: str, headers: dict[str, str], slots: list[str], photos: list[list[int]]
) -> Callable[[int], bytes]:
    """The n-th timed submission: resident1 with the n-th set of ready photos, each with an
    Idempotency-Key of its own."""
    stamp = int(time.time())

    def submission(n: int) -> bytes:
        body = {
            "itemCode": ITEM,
            "materials": dict(zip(slots, ([i] for i in photos[n]), strict=True)),
        }
        return request_bytes(
            "POST",
            f"{base}/mp/v1/orders",
            {**headers, "Idempotency-Key": f"bench-{stamp}-{n}"},
            json.dumps(body).encode(),
        )

    return submission


def measure(
    base: str,
    worker: int,
    template_id: int,
    slots: list[str],
    photos: list[list[int]],
    args: argparse.Namespace,
) -> dict[str, list[Result]]:
    """Every round of every endpoint."""
    headers = login(base, "resident1")
    get = {"Authorization": headers["Authorization"]}
    bare = request_bytes("GET", f"{base}/healthz")
    listing = request_bytes("GET", f"{base}/mp/v1/orders?limit=20", get)
    detail = request_bytes("GET", f"{base}/mp/v1/orders/{template_id}", get)
    submission = submitter(base, get, slots, photos)

    c, s = args.connections, args.seconds
    waits: Counter[str] = Counter()  # PostgreSQL: what its sessions did during submissions
    database = make_url(args.database_url).database if args.database_url else None
    cpu = CpuDuring(worker, database)

    def waits_during() -> AbstractContextManager[Counter[str]]:
        if args.database_url:
            return _postgres.sampled_waits(args.database_url)
        return nullcontext(Counter())

    hammer(f"{base}/healthz", lambda n: bare, connections=c, seconds=1)  # warm up
    used = 0  # photo sets already attached by earlier rounds

    def submissions() -> Result:
        nonlocal used
        start = used
        with waits_during() as seen, cpu.during():
            result = hammer(
                base,
                lambda n: submission(start + n),
                connections=c,
                seconds=s,
                limit=len(photos) - start,
            )
        used += result.requests
        waits.update(seen)
        return result

    runs: dict[str, Callable[[], Result]] = {
        "bare GET /healthz": lambda: hammer(base, lambda n: bare, connections=c, seconds=s),
        "submit POST /mp/v1/orders": submissions,
        "list GET /mp/v1/orders?limit=20": lambda: hammer(
            base, lambda n: listing, connections=c, seconds=s
        ),
        "detail GET /mp/v1/orders/{id}": lambda: hammer(
            base, lambda n: detail, connections=c, seconds=s
        ),
    }
    # Rounds interleave the endpoints, and the median round is kept: this machine's speed
    # drifts by a quarter from minute to minute, which one long run per endpoint would show
    # as a difference between endpoints.
    rounds: dict[str, list[Result]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            rounds[name].append(run())
    submitted = sum(r.ok for r in rounds["submit POST /mp/v1/orders"]) or 1
    print(f"  CPU per submission: {cpu.describe(submitted)}")
    if args.database_url:
        print(f"  PostgreSQL's sessions during submissions: {_postgres.describe_waits(waits)}")
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--seconds", type=float, default=2.0, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--submissions", type=int, default=20_000, help="photo sets prepared")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL database to use instead of SQLite (postgresql+asyncpg://…); "
        "everything in it is dropped",
    )
    parser.add_argument("--workers", type=int, default=1, help="granian worker processes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    table: dict[int, dict[str, Result]] = {}
    errors = 0
    env = {"DAIBAN_SERVER_WORKERS": str(args.workers)}
    if args.database_url:
        env["DAIBAN_DATABASE_URL"] = args.database_url
        _postgres.reset(args.database_url)
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        path = var / "daiban.sqlite3"
        with service(var, **env) as (base, _):
            template_id, slots = template_order(base)
        for size in sizes:
            started = time.perf_counter()
            if args.database_url:
                _postgres.fill(args.database_url, template_id, size, EVENTS)
                photos = _postgres.prepare_photos(
                    args.database_url, template_id, args.submissions, len(slots)
                )
            else:
                fill(path, template_id, size)
                photos = prepare_photos(path, template_id, args.submissions, len(slots))
            print(f"filled to {size:,} orders in {time.perf_counter() - started:.0f} s", flush=True)
            with service(var, **env) as (base, worker):
                rounds = measure(base, worker, template_id, slots, photos, args)
            table[size] = {name: median(results) for name, results in rounds.items()}
            for name, results in rounds.items():
                rates = sorted(r.rate for r in results)
                statuses = sum((r.statuses for r in results), Counter[int]())
                errors += sum(r.errors for r in results)
                print(
                    f"  {name:<34} {table[size][name].rate:>8.0f}/s "
                    f"(rounds {rates[0]:.0f}–{rates[-1]:.0f})  answers {dict(statuses)}",
                    flush=True,
                )
    database = "PostgreSQL" if args.database_url else "SQLite"
    workers = "one granian worker" if args.workers == 1 else f"{args.workers} granian workers"
    print(
        f"\n{workers}, {database}, {args.connections} connections; median of "
        f"{args.rounds} rounds of {args.seconds:g} s per endpoint"
    )
    header = "".join(f"{f'{size:,} orders':>22}" for size in sizes)
    print(f"{'':<34}{header}")
    for name in table[sizes[0]]:
        cells = ""
        for size in sizes:
            result, bare = table[size][name], table[size]["bare GET /healthz"]
            cells += f"{result.rate:>10.0f}/s ({result.rate / bare.rate:>5.1%})"
        print(f"{name:<34}{cells}")
    if len(sizes) > 1:
        for name in table[sizes[0]]:
            small, big = table[sizes[0]][name].rate, table[sizes[-1]][name].rate
            print(f"  {name:<34} at {sizes[-1]:,} vs {sizes[0]:,}: {big / small:.0%}")
    if errors:
        print(f"\n{errors} answers were not 2xx (left out of the rates): see above")
        sys.exit(1)


if __name__ == "__main__":
    main()
