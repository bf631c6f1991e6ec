"""智能预审 in the service: a photo declared as an identity document (`document` when its
upload form is asked for) is read by a job after it completes, and what was found is shown
beside it: to the resident as hints to take it again, to the agent in review with the
fields read. The agent keeps the final say, and their decision is recorded next to the
machine's.

- Queued when the upload completes, unless the queue already holds
  DAIBAN_PREREVIEW_MAX_BACKLOG photos (then it says 未预审 and the agent looks as before):
  a burst of uploads never grows the queue past that, and a submission never waits for it.
- Read by the `prereview` job, one photo at a time per worker process, with one recogniser
  opened once per process (app/prereview). A worker that stops mid-photo leaves it claimed;
  after CLAIM_EXPIRES another takes it again, at most MAX_ATTEMPTS times in all.
- Without the recogniser (the `prereview` extra not installed where the job runs) or with
  DAIBAN_PREREVIEW_ENABLED=false, queued photos say 未预审 and everything else works.
- What was read is personal data: the fields are sealed with the personal-data keys
  (context "prereview"), nothing of them is logged or kept in the clear; the order's
  agent sees the fields (each look audited, as `prereview.read`), everyone else sees them
  masked; the row goes when the photo's file goes (retention, clean-up).
- Findings depend on whose card it should be and on which day: the uploader's are kept
  from the reading (their own number, today); on an order they are worked out again from
  the sealed fields against the order's resident and the day it was submitted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

import anyio
import msgspec
from sqlalchemy import Select, delete, func, select, text, update
from sqlalchemy.orm import Session

from app import audit, errors
from app.context import Context
from app.models import Account, Order, Prereview, Upload
from app.prereview import ExpectedKind, Finding, Reading, check, load_engine, read_document
from app.prereview.reading import NOT_REVIEWED
from app.security.pii import mask_id_number, mask_name
from app.security.tokens import Principal
from storage.base import ObjectTooLarge, StorageError

log = logging.getLogger("daiban.prereview")

CONTEXT = "prereview"  # the sealed fields' associated data
CLAIM_EXPIRES = timedelta(minutes=5)  # a claim this old is a stopped worker's
MAX_ATTEMPTS = 3
# In the queue: spelt, with its values inline, as the queue index's own predicate
# (ix_prereviews_queue), so that both databases read the queue through it: SQLite uses a
# partial index only for a term that matches its predicate, which bound values do not.
IN_QUEUE = text("prereviews.status IN ('queued', 'reading')")
# The agent's decision on a photo: accepted (受理, or not named in a 补正 notice); rejected
# (its material named in a notice, the material's only photo); material_rejected (named,
# with other photos: which of them was wrong the notice does not say).
Decision = Literal["accepted", "rejected", "material_rejected"]
Status = Literal["awaiting", "queued", "reading", "read", "skipped", "engine_missing", "failed"]

NOTES = {
    "full": "未预审：排队预审的照片太多",
    "off": "未预审：本机未开启证件预审",
    "failed": "未预审：读取失败",
    "removed": "未预审：文件已删除",
    "unsealed": "未预审：本机无法读取预审结果",
}


class PrereviewFields(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    """What was read. For anyone but the order's agent: the name, numbers and address
    masked; the birth date, sex, ethnicity and a disability's category and grade left out."""

    name: str | None = None
    sex: str | None = None
    ethnicity: str | None = None
    birth: date | None = None
    address: str | None = None
    id_number: str | None = None
    id_number_valid: bool | None = None
    authority: str | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    long_term: bool = False
    disability_number: str | None = None
    disability_category: str | None = None
    disability_grade: str | None = None
    bank: str | None = None
    account_number: str | None = None
    account_number_valid: bool | None = None


class PrereviewView(msgspec.Struct, rename="camel", kw_only=True):
    document: ExpectedKind  # what the photo should show
    # queued / reading: not read yet (ask again in a few seconds); read; skipped,
    # engine_missing, failed: 未预审 (the note says why), the agent looks as before.
    status: Status
    note: str | None = None
    kind: str | None = None  # what it looked like: id_card_front, id_card_back, hukou_page, …
    confidence: float | None = None
    findings: list[Finding] = msgspec.field(default_factory=list)
    fields: PrereviewFields | None = None
    masked: bool = True
    decision: Decision | None = None  # the agent's in review


class OrderFacts(Protocol):
    """What the findings need of an order: whose card it should be, and from which day."""

    @property
    def resident_id(self) -> int: ...

    @property
    def submitted_at(self) -> datetime: ...


# --- queueing ----------------------------------------------------------------------------


def expect(session: Session, upload_id: int, document: str, now: datetime) -> None:
    """An upload form asked for as `document`: its row waits for the file."""
    session.add(Prereview(upload_id=upload_id, expected=document, status="awaiting", queued_at=now))


def queue(session: Session, ctx: Context, upload_id: int, now: datetime) -> None:
    """The upload completed (in its settling write): queue it, or say why not."""
    row = session.get(Prereview, upload_id)
    if row is None or row.status != "awaiting":
        return
    row.queued_at = now
    # (only material images may ask for it, and verification keeps an image an image)
    if backlog(session)[0] >= ctx.settings.prereview.max_backlog:
        row.status, row.note = "skipped", NOTES["full"]
    else:
        row.status = "queued"


BACKLOG = select(func.count(), func.min(Prereview.queued_at)).where(IN_QUEUE)


def backlog(session: Session) -> tuple[int, datetime | None]:
    """Photos waiting to be read (or being read), and when the oldest was queued."""
    count, oldest = session.execute(BACKLOG).one()
    return int(count or 0), oldest


def forget(session: Session, upload_ids: Iterable[int] | Any) -> None:
    """What was read on these uploads goes with their files (a list or a subquery)."""
    session.execute(
        delete(Prereview)
        .where(Prereview.upload_id.in_(upload_ids))
        .execution_options(synchronize_session=False)
    )


# --- the job -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    upload_id: int
    expected: ExpectedKind
    claimed_at: datetime
    key: str | None
    size: int | None
    owner_id: int


def _waiting(now: datetime) -> Any:
    """Queued, or claimed by a reader that stopped (its claim older than CLAIM_EXPIRES)."""
    return IN_QUEUE & (
        (Prereview.status == "queued") | (Prereview.claimed_at < now - CLAIM_EXPIRES)
    )


def next_up(now: datetime) -> Select[Any]:
    """The oldest few photos waiting, read through the queue index."""
    return select(Prereview.upload_id).where(_waiting(now)).order_by(Prereview.queued_at).limit(5)


def _claim(session: Session, now: datetime) -> _Claimed | None:
    """The oldest waiting photo, taken with a guarded update so that two workers never
    read the same one."""
    waiting = _waiting(now)
    for upload_id in session.scalars(next_up(now)).all():
        taken = session.execute(
            update(Prereview)
            .where(Prereview.upload_id == upload_id, waiting)
            .values(status="reading", claimed_at=now, attempts=Prereview.attempts + 1)
            .returning(Prereview.attempts, Prereview.expected)
            .execution_options(synchronize_session=False)
        ).first()
        if taken is None:  # another worker took it
            continue
        attempts, expected = taken
        if attempts > MAX_ATTEMPTS:  # its readers kept stopping on it
            session.execute(
                update(Prereview)
                .where(Prereview.upload_id == upload_id)
                .values(status="failed", note=NOTES["failed"])
            )
            continue
        upload = session.execute(
            select(Upload.key, Upload.size, Upload.owner_id).where(Upload.id == upload_id)
        ).one()
        kind: ExpectedKind = expected  # type: ignore[assignment]
        return _Claimed(upload_id, kind, now, upload.key, upload.size, upload.owner_id)
    return None


def _settle(session: Session, claimed: _Claimed, values: dict[str, Any]) -> None:
    session.execute(
        update(Prereview)
        .where(
            Prereview.upload_id == claimed.upload_id,
            Prereview.status == "reading",
            Prereview.claimed_at == claimed.claimed_at,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _not_reviewed(session: Session, note: str, now: datetime) -> int:
    done = session.execute(
        update(Prereview)
        .where(_waiting(now))
        .values(status="engine_missing", note=note)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def has_work(session: Session, now: datetime) -> bool:
    """A photo to read: queued, or left by a reader that stopped (not one another worker
    is reading now)."""
    return session.scalar(next_up(now)) is not None


async def read_queued(ctx: Context, *, limit: int | None = None) -> int:
    """Read queued photos one at a time until none is left (or `limit`, or the process
    stops); how many were settled."""
    settings = ctx.settings.prereview
    now = ctx.now()
    if not settings.enabled:
        return await ctx.db.run_write(lambda s: _not_reviewed(s, NOTES["off"], now))
    engine = await anyio.to_thread.run_sync(load_engine)
    if engine is None:
        return await ctx.db.run_write(lambda s: _not_reviewed(s, NOT_REVIEWED, now))
    done = 0
    while limit is None or done < limit:
        if ctx.stopping:
            break
        now = ctx.now()
        claimed = await ctx.db.run_write(lambda s: _claim(s, now))  # noqa: B023
        if claimed is None:
            break
        if not await _read_one(ctx, claimed, engine):
            break  # storage did not answer: the next run tries again
        done += 1
    return done


async def _read_one(ctx: Context, claimed: _Claimed, engine: Any) -> bool:
    """Read and settle one claimed photo; False when storage did not answer (the photo is
    put back as it was, the attempt not counted)."""
    removed = {"status": "skipped", "note": NOTES["removed"]}
    if claimed.key is None:
        await ctx.db.run_write(lambda s: _settle(s, claimed, removed))
        return True
    try:
        data = await ctx.store.read(
            claimed.key, claimed.size or ctx.settings.storage.max_upload_bytes
        )
    except KeyError:  # the file is gone (removed meanwhile)
        await ctx.db.run_write(lambda s: _settle(s, claimed, removed))
        return True
    except ObjectTooLarge:  # not the file that was verified: nothing to read
        failed = {"status": "failed", "note": NOTES["failed"]}
        await ctx.db.run_write(lambda s: _settle(s, claimed, failed))
        return True
    except (StorageError, OSError):
        log.warning("prereview: photo not read from storage", extra={"upload": claimed.upload_id})
        back = {"status": "queued", "attempts": Prereview.attempts - 1}
        await ctx.db.run_write(lambda s: _settle(s, claimed, back))
        return False
    reading = await anyio.to_thread.run_sync(read_document, data, engine)
    del data
    today = ctx.today()
    cipher = ctx.cipher

    def settle(session: Session) -> None:
        owner = session.get(Account, claimed.owner_id)
        own_number = _own_number(ctx, owner)
        own_name = owner.name if own_number is not None and owner is not None else None
        findings = check(reading, claimed.expected, own_number, today, own_name)
        fields = _fields_of(reading)
        sealed = (
            cipher.encrypt(msgspec.json.encode(fields).decode(), context=CONTEXT)
            if reading.status == "read" and fields != PrereviewFields()
            else None
        )
        _settle(
            session,
            claimed,
            {
                "status": "read" if reading.status == "read" else "engine_missing",
                "note": None if reading.status == "read" else (reading.note or None),
                "kind": reading.kind,
                "confidence": round(reading.confidence, 3),
                "fields_enc": sealed,
                "findings": [msgspec.to_builtins(f) for f in findings],
                "engine": reading.engine[:40] or None,
                "seconds": reading.seconds,
                "read_at": ctx.now(),
            },
        )

    await ctx.db.run_write(settle)
    return True


def _own_number(ctx: Context, account: Account | None) -> str | None:
    """A resident's own verified ID number, for the comparison only; None for staff (an
    agent photographing someone else's card for an order they will enter)."""
    if account is None or account.role != "resident" or not account.id_number_enc:
        return None
    try:
        return _open(ctx, account.id_number_enc, "id_number", f"account:{account.id}")
    except Unsealable:  # compared on the order later, if these keys open it then
        return None


def _fields_of(reading: Reading) -> PrereviewFields:
    """The reading's fields, each of PrereviewFields taken from the Reading's own."""
    return PrereviewFields(**{f: getattr(reading, f) for f in PrereviewFields.__struct_fields__})


# --- what is shown -----------------------------------------------------------------------


def _masked(fields: PrereviewFields) -> PrereviewFields:
    address = fields.address
    return PrereviewFields(
        name=mask_name(fields.name),
        address=(address[:6] + "*" * min(len(address) - 6, 8))
        if address and len(address) > 6
        else None,
        id_number=mask_id_number(fields.id_number),
        id_number_valid=fields.id_number_valid,
        authority=fields.authority,
        valid_from=fields.valid_from,
        valid_until=fields.valid_until,
        long_term=fields.long_term,
        disability_number=_mask_digits(fields.disability_number),
        bank=fields.bank,
        account_number=_mask_digits(fields.account_number),
        account_number_valid=fields.account_number_valid,
    )


def _mask_digits(value: str | None) -> str | None:
    """6228 **** **** 0402: the first four and the last four."""
    if not value:
        return None
    return value[:4] + "*" * max(len(value) - 8, 0) + value[-4:]


def _reading_of(row: Prereview, fields: PrereviewFields) -> Reading:
    """Enough of the reading again to check it for another person or day."""
    return Reading(
        status="read",
        kind=row.kind,  # type: ignore[arg-type]
        confidence=row.confidence or 0.0,
        name=fields.name,
        account_number=fields.account_number,
        account_number_valid=fields.account_number_valid,
        id_number=fields.id_number,
        id_number_valid=fields.id_number_valid,
        valid_until=fields.valid_until,
        long_term=fields.long_term,
    )


class Unsealable(Exception):
    """A sealed value these keys do not open (a key not in this service's ring)."""


def _open(ctx: Context, sealed: str, context: str, about: str) -> str:
    """The value sealed in `context`; `about` names its row for the log ("upload:12")."""
    try:
        return ctx.cipher.decrypt(sealed, context=context)
    except Exception:  # an unknown key id, a wrong key: nothing of the value is logged
        log.error("prereview: a sealed value did not open", extra={"about": about})
        raise Unsealable() from None


def _fields(ctx: Context, row: Prereview) -> PrereviewFields:
    if not row.fields_enc:
        return PrereviewFields()
    opened = _open(ctx, row.fields_enc, CONTEXT, f"upload:{row.upload_id}")
    try:
        return msgspec.json.decode(opened, type=PrereviewFields)
    except msgspec.DecodeError:
        log.error("prereview: sealed fields not understood", extra={"upload": row.upload_id})
        raise Unsealable() from None


def _findings(
    session: Session,
    ctx: Context,
    row: Prereview,
    fields: PrereviewFields,
    order: OrderFacts | None,
) -> list[Finding]:
    """The uploader's findings as read; on an order, those for the order's resident on the
    day it was submitted."""
    if order is None or row.kind is None:
        return [msgspec.convert(f, Finding) for f in row.findings or []]
    resident = session.get(Account, order.resident_id)
    number = (
        _open(ctx, resident.id_number_enc, "id_number", f"account:{resident.id}")
        if resident is not None and resident.id_number_enc
        else None
    )
    submitted = order.submitted_at.astimezone(ctx.settings.zone).date()
    name = resident.name if resident is not None else None
    return check(_reading_of(row, fields), row.expected, number, submitted, name)  # type: ignore[arg-type]


def view(
    session: Session,
    ctx: Context,
    principal: Principal,
    upload: Upload,
    order: Order | None = None,
    *,
    whole: bool = False,
) -> PrereviewView | None:
    """The pre-review of `upload` (None: none was asked for). On an order, its findings are
    those for the order's resident on the day it was submitted. Its fields are masked
    unless `whole` (the order's agent asking for them: `whole_view`, audited)."""
    row = session.get(Prereview, upload.id)
    if row is None or row.status == "awaiting" or upload.removed_at is not None:
        return None
    shown = PrereviewView(
        document=row.expected,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        note=row.note,
        kind=row.kind,
        confidence=row.confidence,
        decision=row.decision,  # type: ignore[arg-type]
    )
    if row.status in ("skipped", "engine_missing", "failed"):
        shown.findings = [
            Finding(code="engine_missing", message=row.note or "未预审", severity="info")
        ]
    if row.status != "read":
        return shown
    try:
        fields = _fields(ctx, row)
        shown.findings = _findings(session, ctx, row, fields, order)
    except Unsealable:
        # Shown as not reviewed rather than failing the photo's links or the order page.
        shown.status, shown.note = "failed", NOTES["unsealed"]
        shown.findings = [Finding(code="engine_missing", message=shown.note, severity="info")]
        return shown
    shown.fields, shown.masked = (fields, False) if whole else (_masked(fields), True)
    return shown


def whole_view(
    session: Session, ctx: Context, principal: Principal, upload_id: int
) -> PrereviewView:
    """The fields read on a photo of an order, whole, for that order's agent (to check
    them against the card and fill in the order); each look is audited (prereview.read).
    Anyone else, or a photo without a pre-review, is told there is none."""
    upload = session.get(Upload, upload_id)
    order = session.get(Order, upload.order_id) if upload and upload.order_id else None
    if (
        upload is None
        or order is None
        or principal.role != "agent"
        or order.agent_id != principal.account_id
    ):
        raise errors.NotFound("没有找到该文件的预审结果")
    shown = view(session, ctx, principal, upload, order, whole=True)
    if shown is None:
        raise errors.NotFound("没有找到该文件的预审结果")
    if shown.fields is not None:
        audit.record(
            session,
            principal,
            "prereview.read",
            f"upload:{upload.id}",
            ctx.now(),
            {"order": order.number},
        )
    return shown


# --- the agent's decision, and how often the machine agreed ------------------------------


def record_decisions(
    session: Session,
    ctx: Context,
    principal: Principal | None,
    order: OrderFacts,
    decided: dict[int, Decision],
    now: datetime,
) -> None:
    """The agent's review of these uploads of `order`, beside whether the machine had
    warned of each for that order. The first decision on a photo stands (a rejected one is
    replaced by new photos). A decision the keys cannot check against is left unrecorded:
    it never stops the agent's move."""
    if not decided:
        return
    rows = session.scalars(
        select(Prereview).where(
            Prereview.upload_id.in_(sorted(decided)),
            Prereview.status == "read",
            Prereview.decision.is_(None),
        )
    ).all()
    for row in rows:
        try:
            findings = _findings(session, ctx, row, _fields(ctx, row), order)
        except Unsealable:
            continue
        row.flagged = any(f.severity == "warning" for f in findings)
        row.decision = decided[row.upload_id]
        row.decided_by = principal.account_id if principal else None
        row.decided_at = now


def agreement(session: Session) -> dict[tuple[str, str], int]:
    """Photos read and then decided, by (machine, agent): machine "flagged" (it warned) or
    "passed"; agent "accepted", "rejected" or "material_rejected"."""
    rows = session.execute(
        select(Prereview.flagged, Prereview.decision, func.count())
        .where(Prereview.decision.is_not(None))
        .group_by(Prereview.flagged, Prereview.decision)
    )
    return {
        ("flagged" if flagged else "passed", str(decision)): int(count)
        for flagged, decision, count in rows
    }
