"""/metrics for Prometheus: requests by route, method and status with their latencies
(Litestar's own Prometheus plugin, routes grouped by their path template), and the
service's state read from the database at each scrape (app/ledger/gauges.py).

Not public: only on when DAIBAN_SERVER_METRICS_TOKEN is set, and then only for a bearer of
that token; anyone else gets 404. Request figures are per process: with several granian
workers each scrape sees the one that answered (the state gauges are the same in all)."""

from __future__ import annotations

import hmac
import math
from typing import Any

from litestar import Request, Response, get
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from app import errors
from app.ledger.gauges import service_gauges
from mini_program_api.deps import Ctx

ORDERS = Gauge("daiban_orders", "Orders by status", ["status"])
OVERDUE = Gauge("daiban_orders_overdue", "Running orders past their due time")
OUTBOX = Gauge("daiban_outbox_waiting", "WeChat copies of notifications still to send")
OUTBOX_OLDEST = Gauge(
    "daiban_outbox_oldest_seconds", "How long the oldest WeChat copy still to send has waited"
)
REMINDERS = Gauge("daiban_reminders_due", "Reminders come due and not handled yet")
JOB_SUCCESS = Gauge(
    "daiban_job_last_success_timestamp_seconds", "When each job last finished well", ["job"]
)
FAILED_SENDS = Gauge(
    "daiban_wechat_failed_sends", "WeChat copies that failed for good, by WeChat's code", ["code"]
)
BACKUP_AGE = Gauge(
    "daiban_backup_age_seconds", "Age of the newest backup that finished well (NaN: none)"
)
PREREVIEW_BACKLOG = Gauge(
    "daiban_prereview_backlog", "Photos waiting to be read by the pre-review (智能预审)"
)
PREREVIEW_OLDEST = Gauge(
    "daiban_prereview_oldest_seconds", "How long the oldest photo waiting to be read has waited"
)
PREREVIEW_DECISIONS = Gauge(
    "daiban_prereview_decisions",
    "Photos read and decided in review, by the machine's warning and the agent's decision",
    ["machine", "agent"],
)


def prometheus_config() -> PrometheusConfig:
    return PrometheusConfig(
        app_name="daiban", prefix="daiban", group_path=True, exclude=["/metrics"]
    )


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any], ctx: Ctx) -> Response[bytes]:
    token = ctx.settings.server.metrics_token
    given = request.headers.get("authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise errors.NotFound()
    gauges = await ctx.db.run_long_read(lambda s: service_gauges(s, ctx.now()))
    ORDERS.clear()
    for status, count in gauges.orders.items():
        ORDERS.labels(status).set(count)
    OVERDUE.set(gauges.overdue)
    OUTBOX.set(gauges.outbox)
    OUTBOX_OLDEST.set(gauges.outbox_oldest_seconds)
    REMINDERS.set(gauges.reminders_due)
    JOB_SUCCESS.clear()
    for job, at in gauges.job_last_success.items():
        JOB_SUCCESS.labels(job).set(at)
    FAILED_SENDS.clear()
    for code, count in gauges.failed_sends.items():
        FAILED_SENDS.labels(code).set(count)
    age = gauges.backup_age_seconds
    BACKUP_AGE.set(age if age is not None else math.nan)
    PREREVIEW_BACKLOG.set(gauges.prereview_backlog)
    PREREVIEW_OLDEST.set(gauges.prereview_oldest_seconds)
    PREREVIEW_DECISIONS.clear()
    for (machine, agent), count in gauges.prereview_decisions.items():
        PREREVIEW_DECISIONS.labels(machine, agent).set(count)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
