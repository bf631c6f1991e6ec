"""Submissions on PostgreSQL, two checkouts side by side: each checkout's service on a database
of its own, filled as bench/orders.py fills it, both running at once, and short bursts of
submissions sent to one and then the other, alternating who goes first.

    .venv/bin/python bench/submissions_ab.py BEFORE_CHECKOUT AFTER_CHECKOUT
        [--database-urls postgresql+asyncpg://…/bench1,postgresql+asyncpg://…/bench2
         (both emptied first)] [--bursts 10] [--seconds 2] [--workers 2]

A checkout is a directory holding the project (`git worktree add /tmp/before <commit>`, or a
clone with this checkout's .venv linked in); each service runs that checkout's code. This
machine's speed drifts by a third from minute to minute, which separate runs of
bench/orders.py show as differences between the code measured one after the other; bursts
of a few seconds, alternated, put the two checkouts through the same drift. Printed for
each: the median and range of its bursts' rates, and the CPU time a submission took in its
service, in its database's PostgreSQL sessions and in the load generator, over all bursts.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _postgres
import orders
from _load import hammer, median
from _service import login

PHOTO_SETS = 20_000


def services_of(checkout: str) -> ModuleType:
    """The checkout's own bench/_service.py, which starts that checkout's code."""
    path = Path(checkout).resolve() / "bench" / "_service.py"
    spec = importlib.util.spec_from_file_location(f"_service_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkouts", nargs=2, help="the code before and the code after")
    parser.add_argument(
        "--database-urls",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/bench1,"
        "postgresql+asyncpg://postgres@127.0.0.1:5432/bench2",
        help="two PostgreSQL databases, one a checkout; everything in them is dropped",
    )
    parser.add_argument("--bursts", type=int, default=10, help="per checkout")
    parser.add_argument("--seconds", type=float, default=2.0, help="per burst")
    parser.add_argument("--workers", type=int, default=2, help="granian worker processes")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    urls = args.database_urls.split(",")
    assert len(urls) == 2, "two database URLs"
    sides: list[dict[str, Any]] = []
    with ExitStack() as stack:
        for checkout, url in zip(args.checkouts, urls, strict=True):
            service = services_of(checkout).service
            _postgres.reset(url)
            var = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            env = {"DAIBAN_SERVER_WORKERS": str(args.workers), "DAIBAN_DATABASE_URL": url}
            with service(var, **env) as (base, _):
                template_id, slots = orders.template_order(base)
            _postgres.fill(url, template_id, 10_000, orders.EVENTS)
            photos = _postgres.prepare_photos(url, template_id, PHOTO_SETS, len(slots))
            base, worker = stack.enter_context(service(var, **env))
            headers = {"Authorization": login(base, "resident1")["Authorization"]}

            submission = orders.submitter(base, headers, slots, photos)
            warm = hammer(base, submission, connections=args.connections, seconds=1, limit=1000)
            database = make_url(url).database
            sides.append(
                {
                    "checkout": checkout,
                    "base": base,
                    "submission": submission,
                    "used": warm.requests,
                    "cpu": orders.CpuDuring(worker, database),
                    "results": [],
                }
            )
        for burst in range(args.bursts):
            for side in sides if burst % 2 == 0 else sides[::-1]:
                start, make = side["used"], side["submission"]
                with side["cpu"].during():
                    result = hammer(
                        side["base"],
                        lambda n, start=start, make=make: make(start + n),
                        connections=args.connections,
                        seconds=args.seconds,
                        limit=PHOTO_SETS - start,
                    )
                side["used"] += result.requests
                side["results"].append(result)
                if result.ok != result.requests:
                    sys.exit(f"{side['checkout']}: answers {dict(result.statuses)}")
    for side in sides:
        rates = sorted(r.rate for r in side["results"])
        ok = sum(r.ok for r in side["results"])
        print(
            f"{side['checkout']}: {median(side['results']).rate:.0f} submissions/s "
            f"(bursts {rates[0]:.0f}–{rates[-1]:.0f}); CPU a submission: "
            f"{side['cpu'].describe(ok)}"
        )


if __name__ == "__main__":
    main()
