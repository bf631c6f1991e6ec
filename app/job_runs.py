"""What the scheduled jobs did: each job's latest run and the recent runs, for admins."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import JobRun, Notification, Reminder

RECENT = 50


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
    due = session.scalar(
        select(func.count()).where(Reminder.status == "pending", Reminder.due_at <= now)
    )
    waiting = session.scalar(
        select(func.count()).where(Notification.wechat_status.in_(("pending", "sending")))
    )
    return JobsView(
        latest=[_view(r) for r in latest],
        recent=[_view(r) for r in recent],
        reminders_due=int(due or 0),
        messages_waiting=int(waiting or 0),
    )
