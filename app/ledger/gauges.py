"""The service's state as gauges for monitoring (/metrics): read from the database at each
scrape, so every process answers the same and nothing is kept in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.job_runs import last_successes, reminders_due
from app.models import Notification, Order
from app.notifications.delivery import WAITING
from app.orders.states import RUNNING
from app.uploads import prereviews


@dataclass
class ServiceGauges:
    orders: dict[str, int] = field(default_factory=dict)  # by status
    overdue: int = 0  # running orders past their due time
    outbox: int = 0  # WeChat copies waiting
    outbox_oldest_seconds: float = 0.0  # how long the oldest of them has waited
    reminders_due: int = 0  # come due, not handled yet
    job_last_success: dict[str, float] = field(default_factory=dict)  # job -> unix time
    failed_sends: dict[str, int] = field(default_factory=dict)  # WeChat error code -> count
    backup_age_seconds: float | None = None  # None: no backup recorded
    prereview_backlog: int = 0  # photos waiting to be read (智能预审)
    prereview_oldest_seconds: float = 0.0  # how long the oldest of them has waited
    # Photos read, then decided in review: (machine flagged/passed, agent's decision)
    prereview_decisions: dict[tuple[str, str], int] = field(default_factory=dict)


def service_gauges(session: Session, now: datetime) -> ServiceGauges:
    gauges = ServiceGauges()
    gauges.orders = {
        status: count
        for status, count in session.execute(
            select(Order.status, func.count()).group_by(Order.status)
        )
    }
    gauges.overdue = int(
        session.scalar(select(func.count()).where(Order.status.in_(RUNNING), Order.due_at < now))
        or 0
    )
    waiting, oldest = session.execute(
        select(func.count(), func.min(Notification.created_at)).where(
            Notification.wechat_status.in_(WAITING)
        )
    ).one()
    gauges.outbox = int(waiting or 0)
    gauges.outbox_oldest_seconds = (now - oldest).total_seconds() if oldest else 0.0
    gauges.reminders_due = reminders_due(session, now)
    gauges.job_last_success = {
        job: finished.timestamp() for job, finished in last_successes(session).items()
    }
    for error, count in session.execute(
        select(Notification.last_error, func.count())
        .where(Notification.wechat_status == "failed")
        .group_by(Notification.last_error)
    ):
        code = (error or "").split(" ", 1)[0] or "unknown"  # "40003 invalid openid" -> 40003
        gauges.failed_sends[code] = gauges.failed_sends.get(code, 0) + count
    waiting, oldest_queued = prereviews.backlog(session)
    gauges.prereview_backlog = waiting
    gauges.prereview_oldest_seconds = (
        (now - oldest_queued).total_seconds() if oldest_queued else 0.0
    )
    gauges.prereview_decisions = prereviews.agreement(session)
    backup = gauges.job_last_success.get("backup")
    gauges.backup_age_seconds = now.timestamp() - backup if backup else None
    return gauges
