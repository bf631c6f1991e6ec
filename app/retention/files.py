"""The files of orders that ended long enough ago: photos of ID cards and other materials,
entrustment forms (photos, or the PDF signed on the phone and its signature), voice notes,
results, receipts: every upload of the order, found by its order_id. The order, its
timeline, its rating and its figures stay; each upload row stays too (the order still says
which material was given), with its keys emptied and `removed_at` set."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from app.context import Context
from app.models import Complaint, Order, Rating, RatingAppeal, Rectification, Upload
from app.uploads import prereviews
from storage.base import StorageError

log = logging.getLogger(__name__)

BATCH = 200  # orders per round: a round's keys go to storage in one call


def _case_open(order_id_column: object) -> object:
    """A complaint, a bad rating's case or an appeal about the order is still being dealt
    with: its files are evidence until that ends."""
    return (
        exists().where(Complaint.order_id == order_id_column, Complaint.status != "closed")
        | exists().where(
            Rectification.order_id == order_id_column, Rectification.status != "closed"
        )
        | exists().where(
            Rating.order_id == order_id_column,
            RatingAppeal.rating_id == Rating.id,
            RatingAppeal.status == "pending",
        )
    )


def due_orders(session: Session, cutoff: datetime, limit: int) -> list[int]:
    """Ended before `cutoff`, files not yet removed, no case open: oldest first, through
    ix_orders_files_due, so a run reads what is due and not what is stored."""
    return list(
        session.scalars(
            select(Order.id)
            .where(
                Order.ended_at.is_not(None),
                Order.files_removed_at.is_(None),
                Order.ended_at < cutoff,
                ~_case_open(Order.id),  # type: ignore[operator]
            )
            .order_by(Order.ended_at)
            .limit(limit)
        )
    )


def file_keys(session: Session, order_ids: list[int]) -> list[str]:
    """The stored keys of these orders' files not yet removed, through ix_uploads_order."""
    rows = session.execute(
        select(Upload.key, Upload.thumbnail_key, Upload.incoming_key).where(
            Upload.order_id.in_(order_ids), Upload.removed_at.is_(None)
        )
    )
    return [key for row in rows for key in row if key]


def _mark_removed(session: Session, order_ids: list[int], now: datetime) -> None:
    # What the pre-review read on them (智能预审) goes with the files.
    prereviews.forget(session, select(Upload.id).where(Upload.order_id.in_(order_ids)))
    session.execute(
        update(Upload)
        .where(Upload.order_id.in_(order_ids), Upload.removed_at.is_(None))
        .values(removed_at=now, key=None, thumbnail_key=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Order)
        .where(Order.id.in_(order_ids), Order.files_removed_at.is_(None))
        .values(files_removed_at=now)
        .execution_options(synchronize_session=False)
    )


async def remove_files(ctx: Context, order_ids: list[int]) -> int:
    """Remove the files of these ended orders: from storage first, then the rows say so.
    Storage failing leaves everything as it was for the next run (deleting a key twice is
    harmless), so no file is ever left behind without a row that still names it."""
    if not order_ids:
        return 0
    keys = await ctx.db.run_read(lambda s: file_keys(s, order_ids))
    try:
        await ctx.store.delete(*keys)
    except StorageError:
        log.exception("retention could not remove files", extra={"orders": len(order_ids)})
        return 0
    now = ctx.now()
    await ctx.db.run_write(lambda s: _mark_removed(s, order_ids, now))
    return len(order_ids)


async def remove_due_files(ctx: Context) -> int:
    """Every ended order's files that are due, in rounds; returns how many orders."""
    cutoff = ctx.now() - timedelta(days=ctx.settings.retention.order_files_days)
    removed = 0
    while not ctx.stopping:
        due = await ctx.db.run_read(lambda s: due_orders(s, cutoff, BATCH))
        done = await remove_files(ctx, due)
        removed += done
        if len(due) < BATCH or done < len(due):
            break
    return removed
