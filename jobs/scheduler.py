"""The APScheduler instance, in the API process (`make run`) or alone (`daiban worker`).

No jobs are registered yet: reminders, outbox delivery and clean-up arrive with the jobs issue.
"""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.context import Context

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


def build_scheduler(ctx: Context) -> AsyncIOScheduler:
    return AsyncIOScheduler(timezone=ctx.settings.zone, job_defaults=JOB_DEFAULTS)


def start_in_process(ctx: Context) -> AsyncIOScheduler:
    scheduler = build_scheduler(ctx)
    scheduler.start()
    return scheduler
