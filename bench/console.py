"""The console's board page beside the JSON board, in a town with 10,000 open orders: server
time of each over the real app (ASGI, in-process), beside a bare endpoint of the same run.

    .venv/bin/python bench/console.py [--open 10000] [--history 200000] [--runs 300]

The page is the JSON board's data rendered through a template, with a session looked up
per request instead of a signed token: the difference between the two is what the console
costs on top of the API.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from datetime import UTC, datetime

import httpx
from dispatch import fill, scratch_folder, settings

from app import migrate
from app.asgi import create_app
from app.context import Context
from app.demo import seed_demo


async def timed(client: httpx.AsyncClient, path: str, runs: int, **kw: object) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        response = await client.get(path, **kw)  # type: ignore[arg-type]
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return out


async def main(args: argparse.Namespace) -> None:
    logging.disable(logging.INFO)  # an access line per request would be measured too
    folder = scratch_folder("console")
    config = settings(folder)
    ctx = Context.build(config)
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    ctx.now = lambda: now
    await migrate.upgrade(ctx.db)
    await ctx.db.run_write(lambda s: seed_demo(s, ctx))
    print(f"filling: {args.open:,} open orders, {args.history:,} closed …")
    await ctx.db.run_write(lambda s: fill(s, now, args.open, args.history))

    transport = httpx.ASGITransport(app=create_app(config, ctx=ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        login = await client.post("/mp/v1/auth/login", json={"code": "dev:dispatcher1a"})
        bearer = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        await client.get("/console/sign-in")
        signed_in = await client.post(
            "/console/sign-in/dev",
            data={"code": "dev:dispatcher1a", "_csrf_token": client.cookies["daiban_csrf"]},
        )
        assert signed_in.status_code == 303, signed_in.text
        cases: dict[str, tuple[str, dict[str, object]]] = {
            "bare endpoint (/healthz)": ("/healthz", {}),
            "JSON board (API)": ("/mp/v1/dispatch/board", {"headers": bearer}),
            "board page (console)": ("/console/", {}),
            "board refresh (fragment)": ("/console/board/parts", {}),
        }
        for path, kw in cases.values():  # warm the caches (calendar, statements, templates)
            await timed(client, path, 20, **kw)
        results: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(5):  # interleaved rounds: this machine's speed drifts minute to minute
            for name, (path, kw) in cases.items():
                results[name] += await timed(client, path, args.runs // 5, **kw)
    base = statistics.median(results["bare endpoint (/healthz)"])
    board = statistics.median(results["JSON board (API)"])
    print(f"\n{'request':28} {'median ms':>10} {'p90 ms':>8} {'× bare':>8} {'× JSON board':>13}")
    for name, samples in results.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{name:28} {median:10.3f} {p90:8.3f} {median / base:8.1f} {median / board:13.2f}")
    await ctx.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
