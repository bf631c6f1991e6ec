"""Uploads: issue a presigned form, verify what arrived, hand out short download links,
and remove what was never attached to an order; and keep a file the service made itself
(a signed entrustment's PDF) as an upload of the order, like those that came in."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import anyio
import msgspec
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.kinds import UploadPurpose, UploadStatus
from app.models import Account, Complaint, Order, Rating, RatingAppeal, Upload
from app.security.tokens import Principal
from app.uploads import prereviews
from app.uploads.objects import discard
from app.uploads.prereviews import PrereviewView
from app.uploads.quality import PhotoWarning, check_photo, stored_warnings
from app.uploads.wallet import WalletOrigin
from app.uploads.wallet import origin as wallet_origin
from storage.base import (
    OBJECTS,
    THUMBNAILS,
    ObjectTooLarge,
    StorageError,
    incoming_key,
    stored_key,
)
from storage.verify import (
    ALLOWED_TYPES,
    AUDIO_TYPES,
    VerificationError,
    Verified,
    verify,
    verify_audio,
)

log = logging.getLogger("daiban.uploads")

# 48-megapixel phone cameras (8064×6048) must pass; a decompression bomb must not.
MAX_PIXELS = 50_000_000
# What is decoded into memory (~60 MB for RGB): a 12 or 16 MP photo whole; a 48 MP JPEG at
# half its size (12 MP is more than a document needs); a PNG, WebP or HEIC larger than this,
# which no phone camera makes, is refused before it is decoded.
MAX_DECODED_PIXELS = 20_000_000

# A photo for a staff member's public card (挂牌上岗): an admin's, an image, taken over by the
# staff account when set (app/accounts/staff.py), so never attached to an order.
STAFF_PHOTO = "staff_photo"
# A voice note (语音留言): audio only, and audio only for it (storage/audio.py).
VOICE = "voice"
UploadTaken = errors.error("upload_taken", 409, "有文件刚被用于其他办件或投诉,请重新选择")

# Files that fail are recorded with their reason (no bytes kept) so support can see why.
REJECTION_SIZE_MESSAGE = "文件太大,请压缩后重新上传"
UNPROCESSABLE_MESSAGE = "这个文件无法处理,请重新拍照上传"


class UploadTicket(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    url: str
    fields: dict[str, str]
    file_field: str
    expires_at: datetime
    max_bytes: int


class UploadView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    purpose: UploadPurpose
    status: UploadStatus
    content_type: str | None
    size: int | None
    width: int | None
    height: int | None
    sha256: str | None
    created_at: datetime
    # The photo checks' findings (blur, light, framing, direction: app/uploads/quality.py):
    # hints to take the photo again, never a refusal. Empty for PDFs and PNGs, and for a
    # photo in which nothing was found.
    warnings: list[PhotoWarning] = msgspec.field(default_factory=list)
    # A voice note's length in milliseconds, read from its frames; null for other files.
    duration_ms: int | None = None
    # 智能预审 of a photo declared as an identity document (`document`): queued, then what
    # was read and the hints (findings); null when none was asked for.
    prereview: PrereviewView | None = None


class DownloadLinks(msgspec.Struct, rename="camel", kw_only=True):
    url: str
    thumbnail_url: str | None
    expires_at: datetime
    # The photo checks' hints, for the agent beside the photo (read with the links, so the
    # order's detail costs no query for them).
    warnings: list[PhotoWarning] = msgspec.field(default_factory=list)
    # A copy of a document from the resident's material wallet (材料夹): what it is, when it
    # was first verified (受理) and by whom. The agent may still refuse it in review.
    from_wallet: WalletOrigin | None = None
    # 智能预审: what was read on the photo and the findings for the order's resident (the
    # fields whole for the order's agent, masked for everyone else); null when none.
    prereview: PrereviewView | None = None


def upload_view(upload: Upload, prereview: PrereviewView | None = None) -> UploadView:
    return UploadView(
        id=upload.id,
        purpose=upload.purpose,
        status=upload.status,
        content_type=upload.content_type,
        size=upload.size,
        width=upload.width,
        height=upload.height,
        sha256=upload.sha256,
        created_at=upload.created_at,
        warnings=stored_warnings(upload.warnings),
        duration_ms=upload.duration_ms,
        prereview=prereview,
    )


def create_upload(
    session: Session,
    ctx: Context,
    principal: Principal,
    *,
    purpose: str,
    content_type: str,
    size: int,
    document: str | None = None,
) -> UploadTicket:
    limits = ctx.settings.storage
    problems = []
    audio = content_type in AUDIO_TYPES
    if purpose == VOICE and not audio:
        problems.append({"field": "contentType", "message": "语音留言只能是录音(MP3、AAC 或 M4A)"})
    elif audio and purpose != VOICE:
        problems.append({"field": "purpose", "message": "录音只能作为语音留言(voice)上传"})
    elif content_type not in ALLOWED_TYPES and not audio:
        problems.append(
            {"field": "contentType", "message": "只能上传照片(JPG、PNG、WebP、HEIC)或PDF"}
        )
    if document is not None and (purpose != "material" or not content_type.startswith("image/")):
        problems.append({"field": "document", "message": "只有材料照片可以预审证件"})
    if purpose == STAFF_PHOTO and (
        principal.role != "admin" or not content_type.startswith("image/")
    ):
        problems.append({"field": "purpose", "message": "工作人员照片由管理员上传,且应为图片"})
    largest = ctx.settings.uploads.max_voice_bytes if purpose == VOICE else limits.max_upload_bytes
    if not 0 < size <= largest:
        mb = f"{round(largest / 1_048_576, 1):g}"
        what = "录音" if purpose == VOICE else "文件"
        problems.append({"field": "size", "message": f"{what}大小应在{mb}MB以内"})
    if problems:
        raise errors.InvalidInput(errors=problems)
    now = ctx.now()
    # One person's forms are counted and issued one at a time: on PostgreSQL concurrent
    # requests would each count the others' rows as not yet there. The lock is on the
    # person's own account row, so no one else waits.
    ctx.db.lock_row(session, Account.id, principal.account_id)
    pending, bytes_today = session.execute(
        select(
            func.count().filter(Upload.status == "pending", Upload.upload_expires_at > now),
            func.coalesce(func.sum(Upload.declared_size), 0),
        ).where(
            Upload.owner_id == principal.account_id, Upload.created_at > now - timedelta(days=1)
        )
    ).one()
    if pending >= limits.pending_uploads_per_person:
        raise errors.UploadLimitReached("未完成的上传太多,请先完成或稍后再试")
    if bytes_today + size > limits.upload_bytes_per_person_per_day:
        raise errors.UploadLimitReached("今天上传的文件已达上限,请明天再试")
    key = incoming_key(content_type, now)
    form = ctx.store.presign_upload(
        key, content_type, size, timedelta(seconds=limits.upload_url_ttl_seconds), now
    )
    upload = Upload(
        owner_id=principal.account_id,
        purpose=purpose,
        status="pending",
        declared_type=content_type,
        declared_size=size,
        incoming_key=key,
        upload_expires_at=form.expires_at,
        created_at=now,
    )
    session.add(upload)
    session.flush()
    if document is not None:
        prereviews.expect(session, upload.id, document, now)
    return UploadTicket(
        id=upload.id,
        url=form.url,
        fields=form.fields,
        file_field=form.file_field,
        expires_at=form.expires_at,
        max_bytes=size,
    )


def _visible_upload(session: Session, principal: Principal, upload_id: int) -> Upload:
    """The uploader's own file, for completing and checking it."""
    upload = session.get(Upload, upload_id)
    if upload is None or upload.owner_id != principal.account_id:
        raise errors.NotFound("没有找到该文件")
    return upload


def get_upload(session: Session, ctx: Context, principal: Principal, upload_id: int) -> UploadView:
    upload = _visible_upload(session, principal, upload_id)
    return upload_view(upload, prereviews.view(session, ctx, principal, upload))


async def complete_upload(ctx: Context, principal: Principal, upload_id: int) -> UploadView:
    """Verify what actually arrived and keep a clean copy.

    This use case talks to object storage between database steps, so it opens its own short
    transactions rather than holding one (and SQLite's write lock) across the network.
    """
    upload = await ctx.db.run_read(lambda s: _visible_upload(s, principal, upload_id))
    if upload.status == "ready":  # a retry on a weak signal: same answer
        return await ctx.db.run_read(lambda s: get_upload(s, ctx, principal, upload_id))
    if upload.status == "rejected":
        raise errors.FileRejected(
            upload.rejected_code or "file_rejected", "文件未通过检查,请重新上传"
        )
    try:
        info = await ctx.store.stat(upload.incoming_key)
    except StorageError:
        log.exception("object storage failed", extra={"upload": upload_id})
        raise errors.StorageUnavailable() from None
    if info is None:
        raise errors.UploadNotReceived()
    if info.modified_at and info.modified_at > upload.upload_expires_at + timedelta(seconds=5):
        await _reject(ctx, upload, "upload_expired")
        raise errors.UploadExpired()
    try:
        # The whole file is read, decoded and re-encoded inside the limiter, so memory holds
        # at most its number of photos however many phones complete at once.
        async with ctx.verification_limiter():
            kept = await _keep_clean_copy(ctx, upload)
    except _Rejected as exc:
        await _reject(ctx, upload, exc.code)
        raise errors.FileRejected(exc.code, exc.message) from None
    except _NotThere:
        return await _settled_elsewhere(ctx, principal, upload_id)
    except StorageError:
        log.exception("object storage failed", extra={"upload": upload_id})
        # The raw file may carry GPS: remove it even now; the phone can post the form again.
        await discard(ctx, upload.incoming_key)
        raise errors.StorageUnavailable() from None
    except Exception:
        log.exception("verification failed unexpectedly", extra={"upload": upload_id})
        await _reject(ctx, upload, "file_unprocessable")
        raise errors.FileRejected("file_unprocessable", UNPROCESSABLE_MESSAGE) from None

    def settle(session: Session) -> tuple[bool, UploadView]:
        result = session.execute(
            update(Upload)
            .where(Upload.id == upload.id, Upload.status == "pending")
            .values(
                status="ready",
                key=kept.key,
                thumbnail_key=kept.thumbnail_key,
                content_type=kept.verified.content_type,
                size=kept.verified.size,
                width=kept.verified.width,
                height=kept.verified.height,
                sha256=kept.verified.sha256,
                duration_ms=kept.verified.duration_ms,
                warnings=kept.warnings,
                completed_at=kept.at,
            )
        )
        won = result.rowcount == 1  # type: ignore[attr-defined]
        if won:
            prereviews.queue(session, ctx, upload.id, kept.at)
        return won, get_upload(session, ctx, principal, upload.id)

    won, fresh = await ctx.db.run_write(settle)
    # Once more, now that the upload is settled: a second POST that arrived while it was
    # being verified may have put a raw file back (the local door is shut from here on).
    await discard(ctx, upload.incoming_key)
    if not won:  # a concurrent complete got there first: keep its copy, drop ours
        await discard(ctx, *kept.keys)
    return fresh


class _Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code, self.message = code, message


class _NotThere(Exception):
    """The raw file vanished between stat and read: another complete took it."""


@dataclass(frozen=True)
class _Kept:
    verified: Verified
    key: str
    thumbnail_key: str | None
    at: datetime
    warnings: list[dict[str, str]]

    @property
    def keys(self) -> list[str]:
        return [k for k in (self.key, self.thumbnail_key) if k]


async def _keep_clean_copy(ctx: Context, upload: Upload) -> _Kept:
    """Read the raw file, verify it, store the clean copy and thumbnail, delete the raw file.

    On any failure nothing half-done is left behind: copies already written are removed (the
    raw file is the caller's to remove, as it decides what the failure means)."""
    store = ctx.store
    try:
        data = await store.read(upload.incoming_key, upload.declared_size)
    except ObjectTooLarge:
        raise _Rejected("file_too_large", REJECTION_SIZE_MESSAGE) from None
    except KeyError:
        raise _NotThere() from None
    if upload.purpose == VOICE:
        check = partial(
            verify_audio,
            data,
            upload.declared_type,
            max_bytes=upload.declared_size,
            max_seconds=ctx.settings.uploads.max_voice_seconds,
        )
    else:
        check = partial(
            verify,
            data,
            upload.declared_type,
            max_bytes=upload.declared_size,
            max_pixels=MAX_PIXELS,
            max_decoded_pixels=MAX_DECODED_PIXELS,
        )
    try:
        verified = await anyio.to_thread.run_sync(check)
    except VerificationError as exc:
        raise _Rejected(exc.code, exc.message) from None
    del data  # the raw bytes are not needed while the clean ones are written
    # The photo checks: warnings only, so they never fail the upload (check_photo catches
    # everything); run here, inside the verification slot, on the clean copy.
    warnings: list[dict[str, str]] = []
    if upload.purpose != VOICE:
        warnings = await anyio.to_thread.run_sync(
            partial(
                check_photo,
                verified.data,
                upload.declared_type,
                verified.content_type,
                upload.purpose,
            )
        )
    now = ctx.now()
    written: list[str] = []
    try:
        key = stored_key(OBJECTS, verified.content_type, now)
        written.append(key)
        await store.write(key, verified.data, verified.content_type)
        thumb_key = None
        if verified.thumbnail is not None and verified.thumbnail_type:
            thumb_key = stored_key(THUMBNAILS, verified.thumbnail_type, now)
            written.append(thumb_key)
            await store.write(thumb_key, verified.thumbnail, verified.thumbnail_type)
        # The raw upload may carry EXIF and GPS: it never outlives verification.
        await store.delete(upload.incoming_key)
    except BaseException:
        await discard(ctx, *written)
        raise
    return _Kept(verified, key, thumb_key, now, warnings)


async def _settled_elsewhere(ctx: Context, principal: Principal, upload_id: int) -> UploadView:
    """What a concurrent complete made of the upload whose raw file this one did not find."""
    upload = await ctx.db.run_read(lambda s: _visible_upload(s, principal, upload_id))
    if upload.status == "ready":
        return await ctx.db.run_read(lambda s: get_upload(s, ctx, principal, upload_id))
    if upload.status == "rejected":
        raise errors.FileRejected(
            upload.rejected_code or "file_rejected", "文件未通过检查,请重新上传"
        )
    raise errors.UploadNotReceived()


async def _reject(ctx: Context, upload: Upload, code: str) -> None:
    await discard(ctx, upload.incoming_key)
    await ctx.db.run_write(
        lambda s: s.execute(
            update(Upload)
            .where(Upload.id == upload.id, Upload.status == "pending")
            .values(status="rejected", rejected_code=code, completed_at=ctx.now())
        )
    )
    await discard(ctx, upload.incoming_key)  # as in complete_upload


async def upload_is_open(ctx: Context, incoming_key: str) -> bool:
    """Whether a signed form may still deliver its file: its upload exists and is pending."""
    status = await ctx.db.run_read(
        lambda s: s.scalar(select(Upload.status).where(Upload.incoming_key == incoming_key))
    )
    return status == "pending"


async def clear_raw_files(ctx: Context, *, batch: int = 500) -> int:
    """Remove the raw keys of settled uploads whose forms have expired; returns how many.

    The local store refuses a POST to a settled upload's form, but MinIO takes any POST a
    valid signature allows: a second POST within the form's lifetime would put the raw file
    (with its GPS) back after verification. Once the form has expired no POST can, so the
    key is removed then for good. Runs every minute; each upload once."""
    cleared = 0
    while True:
        now = ctx.now()
        settled = (
            select(Upload.id, Upload.incoming_key)
            .where(
                Upload.raw_cleared_at.is_(None),
                Upload.status != "pending",
                Upload.upload_expires_at < now,
            )
            .order_by(Upload.upload_expires_at)
            .limit(batch)
        )
        rows = await ctx.db.run_read(lambda s: s.execute(settled).all())  # noqa: B023
        if not rows:
            return cleared
        try:
            await ctx.store.delete(*(key for _, key in rows))
        except StorageError:
            log.exception("could not clear raw uploads")
            return cleared
        cleared_now = (
            update(Upload)
            .where(Upload.id.in_([upload_id for upload_id, _ in rows]))
            .values(raw_cleared_at=now)
        )
        await ctx.db.run_write(lambda s: s.execute(cleared_now))  # noqa: B023
        cleared += len(rows)
        if len(rows) < batch:
            return cleared


def _downloadable_upload(session: Session, principal: Principal, upload_id: int) -> Upload:
    """Who may look at a file: its uploader; once it belongs to an order, that order's
    resident and agent, and dispatchers or admins whose region covers the order; kept for a
    complaint or an appeal, the staff who deal with it (and the complaint's resident).
    Anyone else is told it does not exist."""
    upload = session.get(Upload, upload_id)
    if upload is None:
        raise errors.NotFound("没有找到该文件")
    if upload.owner_id == principal.account_id:
        return upload
    if upload.kept_for is not None:
        if not _case_file_visible(session, principal, upload.kept_for):
            raise errors.NotFound("没有找到该文件")
        return upload
    order = session.get(Order, upload.order_id) if upload.order_id else None
    allowed = order is not None and (
        (principal.role == "resident" and order.resident_id == principal.account_id)
        or (principal.role == "agent" and order.agent_id == principal.account_id)
        or (principal.role == "dispatcher" and order.town_id == principal.region_id)
        or (principal.role == "admin" and order.district_id == principal.region_id)
    )
    if not allowed:
        raise errors.NotFound("没有找到该文件")
    return upload


def _case_file_visible(session: Session, principal: Principal, kept_for: str) -> bool:
    kind, _, number = kept_for.partition(":")
    if kind == "complaint":
        complaint = session.get(Complaint, int(number))
        return complaint is not None and (
            (principal.role == "resident" and complaint.resident_id == principal.account_id)
            or (principal.role == "dispatcher" and complaint.town_id == principal.region_id)
            or (principal.role == "admin" and complaint.district_id == principal.region_id)
        )
    if kind == "appeal":
        appeal = session.get(RatingAppeal, int(number))
        rating = session.get(Rating, appeal.rating_id) if appeal else None
        return rating is not None and (
            (principal.role == "dispatcher" and rating.town_id == principal.region_id)
            or (principal.role == "admin" and rating.district_id == principal.region_id)
        )
    return False


def keep_for_case(session: Session, principal: Principal, ids: list[int], kept_for: str) -> None:
    """The caller's own finished uploads, on no order and no other case, become the
    evidence of `kept_for` ("complaint:<id>", "appeal:<id>"), in one guarded statement: one
    another request took meanwhile fails the caller's whole unit of work."""
    unique = sorted(set(ids))
    if not unique:
        return
    kept = session.execute(
        update(Upload)
        .where(
            Upload.id.in_(unique),
            Upload.owner_id == principal.account_id,
            Upload.status == "ready",
            # not attached, spelt so that no statistics steer it to the partial index of
            # every unattached photo (as in app/orders/records.py's claim)
            func.coalesce(Upload.order_id, 0) == 0,
            Upload.kept_for.is_(None),
        )
        .values(kept_for=kept_for)
        .execution_options(synchronize_session=False)
    )
    if kept.rowcount != len(unique):  # type: ignore[attr-defined]
        raise UploadTaken()


def download_links(
    session: Session, ctx: Context, principal: Principal, upload_id: int
) -> DownloadLinks:
    upload = _downloadable_upload(session, principal, upload_id)
    # Already read by the check above (the session's identity map): no second query.
    order = session.get(Order, upload.order_id) if upload.order_id else None
    if upload.removed_at is not None:
        raise errors.FileRemoved()
    if upload.status != "ready" or upload.key is None:
        raise errors.NotFound("文件还没有上传完成")
    now = ctx.now()
    ttl = timedelta(seconds=ctx.settings.storage.download_url_ttl_seconds)
    url = ctx.store.presign_download(upload.key, ttl, now)
    thumb = (
        ctx.store.presign_download(upload.thumbnail_key, ttl, now) if upload.thumbnail_key else None
    )
    return DownloadLinks(
        url=url,
        thumbnail_url=thumb,
        expires_at=now + ttl,
        warnings=stored_warnings(upload.warnings),
        from_wallet=wallet_origin(session, upload),
        prereview=prereviews.view(session, ctx, principal, upload, order),
    )


async def cleanup_unattached(ctx: Context, *, batch: int = 500) -> int:
    """Remove uploads never attached to an order within the allowed time; returns how many.

    The rows go first, in one guarded statement that takes only uploads still unattached and
    still old enough, and their files after: an order that attaches an upload meanwhile
    either keeps it with its files or is told it no longer exists, never a row pointing at
    deleted files. If storage then fails, files are left without a row (logged), never the
    other way round."""
    cutoff = ctx.now() - timedelta(hours=ctx.settings.storage.unattached_upload_ttl_hours)
    unattached = (
        Upload.order_id.is_(None),
        Upload.kept_for.is_(None),  # a complaint's or an appeal's evidence stays
        Upload.created_at < cutoff,
    )
    oldest = select(Upload.id).where(*unattached).order_by(Upload.created_at).limit(batch)
    # The conditions are repeated outside the subquery so that PostgreSQL re-checks them
    # on a row an order updated concurrently.
    claim = (
        delete(Upload)
        .where(Upload.id.in_(oldest), *unattached)
        .returning(Upload.incoming_key, Upload.key, Upload.thumbnail_key)
        .execution_options(synchronize_session=False)
    )
    removed = 0
    while True:
        claimed = await ctx.db.run_write(lambda s: s.execute(claim).all())
        removed += len(claimed)
        keys = [k for row in claimed for k in row if k]
        try:
            await ctx.store.delete(*keys)
        except StorageError:
            log.exception("clean-up could not remove files", extra={"keys": keys})
        if len(claimed) < batch:
            return removed


async def store_made_file(ctx: Context, data: bytes, content_type: str) -> str:
    """Write a file the service made (not uploaded: nothing to verify) under a new key of
    its own; the caller records it with `made_upload` or removes it again."""
    key = stored_key(OBJECTS, content_type, ctx.now())
    try:
        await ctx.store.write(key, data, content_type)
    except StorageError:
        log.exception("object storage failed", extra={"key": key})
        await discard(ctx, key)
        raise errors.StorageUnavailable() from None
    return key


async def discard_made_file(ctx: Context, key: str) -> None:
    """Remove a file `store_made_file` wrote whose row was never written."""
    await discard(ctx, key)


def made_upload(
    session: Session,
    ctx: Context,
    *,
    owner_id: int,
    purpose: UploadPurpose,
    order_id: int,
    key: str,
    data: bytes,
    content_type: str,
) -> int:
    """The row of a file the service made for an order, as a settled upload of `owner_id`:
    downloads, retention and backups treat it as they treat what came in. It never came in,
    so its raw key is its key, already cleared (the raw_uploads job leaves it alone)."""
    now = ctx.now()
    upload = Upload(
        owner_id=owner_id,
        purpose=purpose,
        status="ready",
        declared_type=content_type,
        declared_size=len(data),
        incoming_key=key,
        upload_expires_at=now,
        key=key,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        warnings=[],
        order_id=order_id,
        created_at=now,
        completed_at=now,
        raw_cleared_at=now,
    )
    session.add(upload)
    session.flush()
    return upload.id
