"""The scheduled jobs. Each is a thin, recorded call of the app's own service functions,
the same ones the API uses."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from app.context import Context
from app.job_runs import recorded
from app.ledger import files as ledger_files
from app.models import JobRun
from app.notifications import delivery
from app.ratings import service as ratings
from app.uploads.service import cleanup_unattached, clear_raw_files
from jobs import due_reminders

MAX_BATCHES = 50  # one tick handles at most this many batches; the next tick goes on
KEEP_RUNS = timedelta(days=14)


async def deliver(ctx: Context) -> int:
    async def work() -> int:
        total = 0
        for _ in range(MAX_BATCHES):
            handled = await delivery.deliver_due(ctx)
            total += handled
            if handled < ctx.settings.scheduler.delivery_batch:
                break
        return total

    return await recorded(ctx, "deliver", work)


async def remind(ctx: Context) -> int:
    async def work() -> int:
        total = 0
        for _ in range(MAX_BATCHES):
            handled = await ctx.db.run_write(lambda s: due_reminders.run_due(s, ctx))
            total += handled
            if handled < due_reminders.BATCH:
                break
        return total

    return await recorded(ctx, "reminders", work)


async def check_comments(ctx: Context) -> int:
    """Rating comments whose text check failed for want of WeChat, checked again."""
    return await recorded(ctx, "comment_checks", lambda: ratings.recheck_comments(ctx))


async def build_ledgers(ctx: Context) -> int:
    """Last month's village and town ledgers that are still missing (catch-up included)."""
    outcome = await ledger_files.build_recorded(ctx)
    return outcome.built if outcome else 0


async def clear_raw_uploads(ctx: Context) -> int:
    """Raw files of settled uploads, once their upload forms have expired."""
    return await recorded(ctx, "raw_uploads", lambda: clear_raw_files(ctx))


async def clean_up(ctx: Context) -> int:
    """Uploads never attached to an order, and job records older than two weeks."""

    async def work() -> int:
        removed = await cleanup_unattached(ctx)
        cutoff = ctx.now() - KEEP_RUNS
        await ctx.db.run_write(
            lambda s: s.execute(delete(JobRun).where(JobRun.started_at < cutoff))
        )
        return removed

    return await recorded(ctx, "clean_up", work)
