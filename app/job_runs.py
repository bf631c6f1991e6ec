"""Job runs: each run of a scheduled job (or of the same work started by an admin) is
recorded, and admins read each job's latest run and the recent runs."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app.context import Context
from app.db import take_turns
from app.models import JobRun, Notification, Reminder
from app.notifications.delivery import WAITING, WORKER
from app.uploads import prereviews

RECENT = 50
log = logging.getLogger("daiban.jobs")


class JobIncomplete(Exception):
    """A run that did part of its work: `items` were handled, the rest failed as `str(self)`
    says (the next run retries them)."""

    def __init__(self, items: int, message: str) -> None:
        super().__init__(message)
        self.items = items


async def recorded(
    ctx: Context,
    job: str,
    work: Callable[[], Awaitable[int]],
    *,
    worker: str = WORKER,
    run_id: int | None = None,
) -> int:
    """Run `work` (returns the items it handled) between two rows of job_runs; a failure is
    written there and logged, never raised into the scheduler. `run_id`: the run's row,
    already written by a claim (`claim_run`)."""
    if run_id is None:
        started = ctx.now()
        run_id = await ctx.db.run_write(lambda s: start_run(s, job, worker, started))
    items, error = 0, None
    task = asyncio.current_task()
    if task is not None:
        ctx.running.add(task)
    try:
        try:
            items = await work()
        except JobIncomplete as exc:
            items, error = exc.items, str(exc)[-2000:]
            log.error("job incomplete", extra={"job": job, "reason": str(exc)})
        except asyncio.CancelledError:
            # The process stops and would not wait longer: the run still records its end.
            error = "cancelled: the process stopped before the run ended"
            await asyncio.shield(_finish(ctx, run_id, items, error))
            raise
        except Exception:
            error = traceback.format_exc(limit=5)[-2000:]
            log.exception("job failed", extra={"job": job})
        await _finish(ctx, run_id, items, error)
    finally:
        if task is not None:
            ctx.running.discard(task)
    return items


async def _finish(ctx: Context, run_id: int, items: int, error: str | None) -> None:
    finished = ctx.now()
    await ctx.db.run_write(
        lambda s: s.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(finished_at=finished, items=items, error=error)
        )
    )


def start_run(session: Session, job: str, worker: str, started: datetime) -> int:
    return int(
        session.execute(
            insert(JobRun)
            .values(job=job, worker=worker, started_at=started, items=0)
            .returning(JobRun.id)
        ).scalar_one()
    )


def claim_run(session: Session, job: str, within: timedelta, now: datetime) -> int | None:
    """For a job that one worker should run once in a while (a backup): the new run's row,
    or None when a run of it started within `within`. Workers take turns at the check (an
    advisory lock on PostgreSQL; SQLite's single writer), so one of them claims it."""
    take_turns(session, f"job:{job}")
    recent = session.scalar(
        select(JobRun.id).where(JobRun.job == job, JobRun.started_at > now - within).limit(1)
    )
    return None if recent is not None else start_run(session, job, WORKER, now)


class RunView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    job: str
    worker: str
    started_at: datetime
    finished_at: datetime | None
    items: int
    error: str | None


class JobsView(msgspec.Struct, rename="camel", kw_only=True):
    latest: list[RunView]  # each job's latest run
    recent: list[RunView]  # the latest runs of any job, newest first
    reminders_due: int  # reminders whose time has come and that no run has handled yet
    messages_waiting: int  # WeChat copies still to send (or being sent)
    prereview_backlog: int = 0  # photos waiting to be read (智能预审), at most its setting


def _view(run: JobRun) -> RunView:
    return RunView(
        id=run.id,
        job=run.job,
        worker=run.worker,
        started_at=run.started_at,
        finished_at=run.finished_at,
        items=run.items,
        error=run.error,
    )


def jobs_view(session: Session, now: datetime) -> JobsView:
    latest_ids = select(func.max(JobRun.id)).group_by(JobRun.job)
    latest = session.scalars(select(JobRun).where(JobRun.id.in_(latest_ids)).order_by(JobRun.job))
    recent = session.scalars(select(JobRun).order_by(JobRun.id.desc()).limit(RECENT))
    return JobsView(
        latest=[_view(r) for r in latest],
        recent=[_view(r) for r in recent],
        reminders_due=reminders_due(session, now),
        messages_waiting=messages_waiting(session),
        prereview_backlog=prereviews.backlog(session)[0],
    )


def reminders_due(session: Session, now: datetime) -> int:
    """Reminders whose time has come and that no run has handled yet."""
    due = select(func.count()).where(Reminder.status == "pending", Reminder.due_at <= now)
    return int(session.scalar(due) or 0)


def messages_waiting(session: Session) -> int:
    """WeChat copies still to send (or being sent)."""
    return int(
        session.scalar(select(func.count()).where(Notification.wechat_status.in_(WAITING))) or 0
    )


def last_successes(session: Session) -> dict[str, datetime]:
    """When each job last finished well."""
    rows = session.execute(
        select(JobRun.job, func.max(JobRun.finished_at))
        .where(JobRun.error.is_(None), JobRun.finished_at.is_not(None))
        .group_by(JobRun.job)
    )
    return {job: finished for job, finished in rows if finished is not None}
