"""The evidence of complaints and rating appeals that have been over long enough: the files
they kept (photos, letters; `uploads.kept_for`) and, for a complainant without an account,
the name, phone and ID number staff recorded to reach them. The case itself, its text, its
answer and its figures stay. Complaints and appeals are few (a town's dozens a year), so a
run reads the ended ones of the table rather than an index of what is due."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.context import Context
from app.models import Complaint, RatingAppeal, Upload
from app.uploads import prereviews
from storage.base import StorageError

log = logging.getLogger(__name__)


def _over(session: Session, cutoff: datetime) -> list[str]:
    """The cases over before `cutoff`, as the uploads name them."""
    complaints = session.scalars(
        select(Complaint.id).where(
            Complaint.status == "closed",
            func.coalesce(Complaint.feedback_at, Complaint.answered_at) < cutoff,
        )
    )
    appeals = session.scalars(
        select(RatingAppeal.id).where(
            RatingAppeal.status != "pending", RatingAppeal.decided_at < cutoff
        )
    )
    return [f"complaint:{i}" for i in complaints] + [f"appeal:{i}" for i in appeals]


def _kept_files(session: Session, cases: list[str]) -> list[tuple[int, list[str]]]:
    rows = session.execute(
        select(Upload.id, Upload.key, Upload.thumbnail_key, Upload.incoming_key).where(
            Upload.kept_for.in_(cases), Upload.removed_at.is_(None)
        )
    )
    return [(row.id, [k for k in row[1:] if k]) for row in rows]


def _forget_contacts(session: Session, cutoff: datetime) -> int:
    result = session.execute(
        update(Complaint)
        .where(
            Complaint.status == "closed",
            func.coalesce(Complaint.feedback_at, Complaint.answered_at) < cutoff,
            Complaint.contact_name.is_not(None)
            | Complaint.contact_phone_enc.is_not(None)
            | Complaint.contact_id_number_enc.is_not(None),
        )
        .values(
            contact_name=None,
            contact_phone_enc=None,
            contact_phone_hash=None,
            contact_id_number_enc=None,
            contact_id_number_hash=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def remove_case_evidence(ctx: Context) -> tuple[int, int]:
    """Files of cases over for DAIBAN_RETENTION_ORDER_FILES_DAYS, from storage first and then
    the rows say so (as for orders' files), and the contacts of complaints over as long.
    Returns (files removed, complaints whose contact was erased)."""
    cutoff = ctx.now() - timedelta(days=ctx.settings.retention.order_files_days)

    def due(session: Session) -> list[tuple[int, list[str]]]:
        cases = _over(session, cutoff)
        return _kept_files(session, cases) if cases else []

    files = await ctx.db.run_read(due)
    removed = 0
    if files:
        try:
            await ctx.store.delete(*[k for _, keys in files for k in keys])
        except StorageError:
            log.exception("retention could not remove case files", extra={"files": len(files)})
        else:
            now = ctx.now()
            ids = [i for i, _ in files]

            def mark(session: Session) -> None:
                prereviews.forget(session, ids)  # what the pre-review read goes with them
                session.execute(
                    update(Upload)
                    .where(Upload.id.in_(ids), Upload.removed_at.is_(None))
                    .values(removed_at=now, key=None, thumbnail_key=None)
                    .execution_options(synchronize_session=False)
                )

            await ctx.db.run_write(mark)
            removed = len(ids)
    contacts = await ctx.db.run_write(lambda s: _forget_contacts(s, cutoff))
    return removed, contacts
