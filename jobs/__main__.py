"""`python -m jobs`: run the scheduled jobs without the API (several workers may run at once)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from app.context import Context
from app.logs import configure_logging
from app.security.key_check import KeysMismatch, check_keys
from app.settings import Settings, SettingsError, load_settings
from jobs.scheduler import build_scheduler, stop

log = logging.getLogger("daiban.jobs")


async def run_worker(settings: Settings) -> None:
    """Run the jobs until SIGINT or SIGTERM; raises KeysMismatch, before any job runs, when
    the personal-data keys are not the database's."""
    ctx = Context.build(settings)
    try:
        await ctx.db.run_write(lambda session: check_keys(session, ctx.cipher, ctx.now()))
    except BaseException:
        await ctx.aclose()
        raise
    scheduler = build_scheduler(ctx)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    scheduler.start()
    gc.freeze()  # what starting made lives as long as the process (app/asgi.py)
    log.info("worker started", extra={"jobs": [job.id for job in scheduler.get_jobs()]})
    try:
        await stopped.wait()
    finally:
        await stop(scheduler, ctx)
        await ctx.aclose()
        log.info("worker stopped")


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"daiban worker: bad setting: {exc}")
        return 2
    configure_logging(settings.core.log_level, settings.core.log_format)
    try:
        asyncio.run(run_worker(settings))
    except KeysMismatch as exc:
        print(f"daiban worker: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
