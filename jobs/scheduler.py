"""The APScheduler instance, in the API process (`make run`) or alone (`daiban worker`).

Every job may run in several workers at once: each claims its own work (reminders and
messages are taken row by row under a lock or a guarded update), so nothing is done twice.
Stable ids, coalescing and a misfire grace keep a busy or sleeping worker from piling up runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, time
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from app.context import Context
from jobs import tasks

STOP_GRACE = 30.0  # seconds an ordinary stop waits for the job runs under way
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


def build_scheduler(ctx: Context) -> AsyncIOScheduler:
    settings = ctx.settings.scheduler
    scheduler = AsyncIOScheduler(timezone=ctx.settings.zone, job_defaults=JOB_DEFAULTS)
    scheduler.add_job(
        tasks.deliver, "interval", seconds=settings.delivery_seconds, args=[ctx], id="deliver"
    )
    scheduler.add_job(
        tasks.remind, "interval", seconds=settings.tick_seconds, args=[ctx], id="reminders"
    )
    scheduler.add_job(tasks.check_comments, "interval", minutes=10, args=[ctx], id="comment_checks")
    scheduler.add_job(
        tasks.clear_raw_uploads,
        "interval",
        seconds=settings.tick_seconds,
        args=[ctx],
        id="raw_uploads",
    )
    scheduler.add_job(
        tasks.prereview,
        "interval",
        seconds=ctx.settings.prereview.seconds,
        args=[ctx],
        id="prereview",
    )
    # Nightly, and once at start: a worker that was down on the 1st catches up at once.
    scheduler.add_job(
        tasks.build_ledgers,
        CronTrigger(hour=1, minute=30, timezone=ctx.settings.zone),
        args=[ctx],
        id="ledgers",
        next_run_time=datetime.now(ctx.settings.zone),
        misfire_grace_time=6 * 3600,
    )
    _daily(scheduler, ctx, tasks.clean_up, settings.cleanup_at, "clean_up")
    _daily(scheduler, ctx, tasks.retain, ctx.settings.retention.at, "retention")
    if ctx.settings.backup.dir:
        _daily(scheduler, ctx, tasks.back_up, ctx.settings.backup.at, "backup")
    return scheduler


def _daily(
    scheduler: AsyncIOScheduler, ctx: Context, task: Callable[..., Any], at: str, job_id: str
) -> None:
    """A job once a day at a setting's HH:MM (business time); one missed while the worker
    slept still runs within six hours."""
    moment = time.fromisoformat(at)
    scheduler.add_job(
        task,
        CronTrigger(hour=moment.hour, minute=moment.minute, timezone=ctx.settings.zone),
        args=[ctx],
        id=job_id,
        misfire_grace_time=6 * 3600,
    )


def start_in_process(ctx: Context) -> AsyncIOScheduler:
    scheduler = build_scheduler(ctx)
    scheduler.start()
    return scheduler


async def stop(scheduler: AsyncIOScheduler, ctx: Context, grace: float = STOP_GRACE) -> None:
    """An ordinary stop: no new runs, no new work in the runs under way (`ctx.stopping`),
    and up to `grace` seconds for them to finish what is in hand (a message being sent
    waits at most the WeChat timeout); what is still running then is cancelled, and its
    run records that."""
    ctx.stopping = True
    scheduler.pause()
    running = {task for task in ctx.running if not task.done()}
    if running:
        await asyncio.wait(running, timeout=grace)
    scheduler.shutdown(wait=False)
    left = {task for task in ctx.running if not task.done()}
    for task in left:
        task.cancel()
    if left:
        await asyncio.wait(left, timeout=5)
