"""The scheduled jobs. Each is a thin, recorded call of the app's own service functions,
the same ones the API uses."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import anyio
from sqlalchemy import delete

from app.accounts import console
from app.backup import backup, prune
from app.context import Context
from app.job_runs import claim_run, recorded
from app.ledger import files as ledger_files
from app.models import JobRun
from app.notifications import delivery
from app.ratings import service as ratings
from app.retention.run import run_retention
from app.uploads import prereviews
from app.uploads.service import cleanup_unattached, clear_raw_files
from jobs import due_reminders

log = logging.getLogger("daiban.reminders")
PHOTOS_PER_RUN = 100  # 智能预审: about a minute of reading; the next run goes on
MAX_BATCHES = 50  # one tick handles at most this many batches; the next tick goes on
KEEP_RUNS = timedelta(days=14)
BACKUP_EVERY = timedelta(hours=12)  # a backup run started more recently: the others skip


async def deliver(ctx: Context) -> int:
    return await recorded(ctx, "deliver", lambda: delivery.deliver_due(ctx, batches=MAX_BATCHES))


async def remind(ctx: Context) -> int:
    async def work() -> int:
        total = 0
        for _ in range(MAX_BATCHES):
            try:
                handled = await ctx.db.run_write(
                    lambda s: due_reminders.run_due(s, ctx, together=True)
                )
            except due_reminders.BatchFailed as failed:
                log.warning(
                    "a reminder failed: its batch is run again one by one",
                    extra={"reminder": failed.args[0]},
                )
                handled = await ctx.db.run_write(lambda s: due_reminders.run_due(s, ctx))
            total += handled
            if handled < due_reminders.BATCH or ctx.stopping:
                break
        return total

    return await recorded(ctx, "reminders", work)


async def check_comments(ctx: Context) -> int:
    """Rating comments whose text check failed for want of WeChat, checked again."""
    return await recorded(ctx, "comment_checks", lambda: ratings.recheck_comments(ctx))


async def build_ledgers(ctx: Context) -> int:
    """Last month's missing village and town ledgers (catch-up included), every provisional
    ledger made again, and those past their deadline frozen as version 1."""
    return await ledger_files.build_nightly(ctx)


async def clear_raw_uploads(ctx: Context) -> int:
    """Raw files of settled uploads, once their upload forms have expired."""
    return await recorded(ctx, "raw_uploads", lambda: clear_raw_files(ctx))


async def prereview(ctx: Context) -> int:
    """Photos declared as identity documents, read one at a time (智能预审). A run is
    recorded only when there is something to read (it looks every few seconds)."""
    now = ctx.now()
    if not await ctx.db.run_read(lambda s: prereviews.has_work(s, now)):
        return 0
    return await recorded(
        ctx, "prereview", lambda: prereviews.read_queued(ctx, limit=PHOTOS_PER_RUN)
    )


async def clean_up(ctx: Context) -> int:
    """Uploads never attached to an order, job records older than two weeks, and the
    console's old sign-ins and long-ended sessions."""

    async def work() -> int:
        removed = await cleanup_unattached(ctx)
        cutoff = ctx.now() - KEEP_RUNS
        await ctx.db.run_write(
            lambda s: s.execute(delete(JobRun).where(JobRun.started_at < cutoff))
        )
        await ctx.db.run_write(lambda s: console.clean_up(s, ctx))
        return removed

    return await recorded(ctx, "clean_up", work)


async def back_up(ctx: Context) -> int:
    """The nightly backup into DAIBAN_BACKUP_DIR, then the retention of older ones; the
    items are the rows backed up. One worker of several claims it; the others skip."""
    claimed = await ctx.db.run_write(lambda s: claim_run(s, "backup", BACKUP_EVERY, ctx.now()))
    if claimed is None:
        return 0

    async def work() -> int:
        settings = ctx.settings.backup
        done = await backup(ctx.settings, Path(settings.dir), ctx.now())
        await anyio.to_thread.run_sync(
            prune, Path(settings.dir), settings.keep_daily, settings.keep_monthly
        )
        return done.rows

    return await recorded(ctx, "backup", work, run_id=claimed)


async def retain(ctx: Context) -> int:
    """Personal data past its time (app/retention): ended orders' files, old audit rows,
    accounts unused for long; the items are all three together."""

    async def work() -> int:
        return (await run_retention(ctx)).total

    return await recorded(ctx, "retention", work)
