"""Each job run is recorded: which job, which worker, when, how many items, what failed."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable

from sqlalchemy import insert, update

from app.context import Context
from app.models import JobRun
from app.notifications.delivery import WORKER

log = logging.getLogger("daiban.jobs")


async def recorded(ctx: Context, job: str, work: Callable[[], Awaitable[int]]) -> int:
    """Run `work` (returns the items it handled) between two rows of job_runs; a failure is
    written there and logged, never raised into the scheduler."""
    started = ctx.now()
    run_id = await ctx.db.run_write(
        lambda s: s.execute(
            insert(JobRun)
            .values(job=job, worker=WORKER, started_at=started, items=0)
            .returning(JobRun.id)
        ).scalar_one()
    )
    items, error = 0, None
    try:
        items = await work()
    except Exception:
        error = traceback.format_exc(limit=5)[-2000:]
        log.exception("job failed", extra={"job": job})
    finished = ctx.now()
    await ctx.db.run_write(
        lambda s: s.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(finished_at=finished, items=items, error=error)
        )
    )
    return items
