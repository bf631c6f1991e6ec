"""The material wallet (材料夹, 少报材料): a resident keeps identity documents an agent has
verified, and attaches them to later orders in one tap instead of photographing them again.

- **Keep.** From one of their own orders whose agent accepted it (受理), a resident keeps a
  material of the kinds in WALLET_CODES (ID card, household register, disability
  certificate, …) with their explicit consent (`consent: true`, recorded with its time). The
  item remembers where and when it was verified and by whom (the agent who accepted the
  order). Its files are the wallet's own copies in storage (uploads kept_for
  "wallet:<id>"), so the order's files and the wallet's follow their own rules.
- **Expiry.** An item expires DAIBAN_UPLOADS_WALLET_DAYS after it was kept, and never after
  the document's own validity when the resident gives it (`validUntil`, the date on the
  back of the ID card, say). The retention job removes expired items with their files.
- **Reuse.** `use` copies the item's files again into fresh uploads of the resident's,
  marked with the item (uploads.wallet_item_id), which the resident then gives as that
  material in a new order like any photo. The agent sees on each such file that it came
  from the wallet, when it was first verified and by whom, and may still refuse it in
  review (a supplement notice, which counts as a round like any other). Each reuse is
  audited (`wallet.use`), as are keeping (`wallet.keep`) and removing (`wallet.remove`).
- **Removal.** The resident may remove an item at any time: its files are removed from
  storage at once and the item is kept as removed (what was kept, when, and why it went).
  A copy already given to an order is that order's file: it stays while that order needs
  it and goes with the order's other files under the retention rules.

Storage is read and written outside any database transaction: the copies are written
first, then the rows that name them; a failure between the two leaves unnamed objects,
never a row naming a missing one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app import audit, errors
from app.context import Context
from app.models import Account, ItemVersion, Order, Upload, WalletItem
from app.models.tables import EVENTS, ORDERS
from app.security.tokens import Principal
from app.uploads.objects import discard
from storage.base import OBJECTS, THUMBNAILS, StorageError, stored_key

log = logging.getLogger(__name__)

# The materials a wallet keeps: documents of the person, the same in every order.
WALLET_CODES = frozenset(
    {
        "id_card",  # 居民身份证
        "hukou_book",  # 居民户口簿
        "disability_cert",  # 残疾人证
        "ss_card",  # 社会保障卡
        "bank_card",  # 银行卡或存折
        "marriage_cert",  # 结婚证
        "discharge_cert",  # 退役证件
        "pension_cert",  # 优抚对象证件
    }
)
MAX_ITEMS = 20  # kept at once, per resident
CONSENT_TEXT = "我同意将该证件的照片保存在我的材料夹中,用于今后委托办事;我可以随时删除。"

NotKeepable = errors.error("wallet_not_keepable", 409, "该材料不能放入材料夹")
WalletFull = errors.error("wallet_full", 409, "材料夹已满,请先删除不用的证件")
ItemGone = errors.error("wallet_item_gone", 409, "材料夹中的该证件已过期或已删除,请重新拍照")
AlreadyKept = errors.error("wallet_already_kept", 409, "该证件已在材料夹中")


class WalletItemView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    material_code: str
    name: str
    verified_at: datetime  # when an agent first accepted it (受理)
    verified_by_name: str | None
    kept_at: datetime
    expires_at: datetime
    valid_until: date | None
    uses: int
    upload_ids: list[int]  # the wallet's copies: their links through /uploads/{id}/url


class UsedItem(msgspec.Struct, rename="camel", kw_only=True):
    """Fresh uploads copied from a wallet item: give them as the material of a new order."""

    wallet_item_id: int
    material_code: str
    upload_ids: list[int]


class WalletOrigin(msgspec.Struct, rename="camel", kw_only=True):
    """What an agent sees on a file that came from the wallet."""

    wallet_item_id: int
    name: str
    verified_at: datetime
    verified_by_name: str | None


@dataclass(frozen=True)
class _File:
    key: str
    thumbnail_key: str | None
    content_type: str
    size: int
    width: int | None
    height: int | None
    sha256: str | None
    warnings: list[dict[str, Any]] | None

    @classmethod
    def of(cls, u: Upload) -> _File | None:
        """A stored file's facts, or None when its file is gone (or never arrived)."""
        if not u.key or not u.content_type or u.removed_at is not None or u.status != "ready":
            return None
        return cls(
            u.key,
            u.thumbnail_key,
            u.content_type,
            u.size or 0,
            u.width,
            u.height,
            u.sha256,
            u.warnings,
        )


def _keys(files: list[_File]) -> list[str]:
    return [k for f in files for k in (f.key, f.thumbnail_key) if k]


# --- reading ------------------------------------------------------------------------------


def _verifier(session: Session, item: WalletItem) -> str | None:
    """The name of the agent who accepted the document (受理) where it was first verified."""
    by = session.get(Account, item.verified_by) if item.verified_by else None
    return by.name if by else None


def _view(session: Session, item: WalletItem) -> WalletItemView:
    ids = session.scalars(
        select(Upload.id)
        .where(Upload.kept_for == f"wallet:{item.id}", Upload.removed_at.is_(None))
        .order_by(Upload.id)
    ).all()
    return WalletItemView(
        id=item.id,
        material_code=item.material_code,
        name=item.name,
        verified_at=item.verified_at,
        verified_by_name=_verifier(session, item),
        kept_at=item.created_at,
        expires_at=item.expires_at,
        valid_until=item.valid_until,
        uses=item.uses,
        upload_ids=list(ids),
    )


def items(session: Session, ctx: Context, principal: Principal) -> list[WalletItemView]:
    """The resident's kept documents that have not expired, newest first."""
    now = ctx.now()
    rows = session.scalars(
        select(WalletItem)
        .where(
            WalletItem.owner_id == principal.account_id,
            WalletItem.removed_at.is_(None),
            WalletItem.expires_at > now,
        )
        .order_by(WalletItem.id.desc())
    ).all()
    return [_view(session, r) for r in rows]


def _own_item(session: Session, principal: Principal, item_id: int) -> WalletItem:
    item = session.get(WalletItem, item_id)  # a path id beyond a BIGINT never gets here
    if item is None or item.owner_id != principal.account_id:
        raise errors.NotFound("没有找到该证件")
    return item


def origin(session: Session, upload: Upload) -> WalletOrigin | None:
    """Where a file that came from the wallet was first verified, for whoever may see it."""
    if upload.wallet_item_id is None:
        return None
    item = session.get(WalletItem, upload.wallet_item_id)
    if item is None:
        return None
    return WalletOrigin(
        wallet_item_id=item.id,
        name=item.name,
        verified_at=item.verified_at,
        verified_by_name=_verifier(session, item),
    )


# --- keeping ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    order_id: int
    code: str
    name: str
    verified_by: int | None
    verified_at: datetime
    files: list[_File]


def _source(session: Session, principal: Principal, order_id: int, code: str) -> _Source:
    """The material as the agent accepted it in the resident's own order: 404 for an order
    that is not theirs, 409 when it cannot be kept (not a wallet kind, not verified, files
    gone)."""
    order = session.execute(
        select(ORDERS.c.id, ORDERS.c.resident_id, ORDERS.c.materials).where(ORDERS.c.id == order_id)
    ).one_or_none()
    if order is None or order.resident_id != principal.account_id:
        raise errors.NotFound("没有找到该办件")
    if code not in WALLET_CODES:
        raise NotKeepable("只有身份证、户口簿、残疾人证等本人证件可以放入材料夹")
    slot = (order.materials or {}).get(code)
    if not slot or slot.get("state") != "accepted" or not slot.get("uploads"):
        raise NotKeepable("该材料还没有经代办员核验通过(受理),暂不能放入材料夹")
    accepted = session.execute(
        select(EVENTS.c.actor_id, EVENTS.c.at)
        .where(EVENTS.c.order_id == order_id, EVENTS.c.action == "accept")
        .order_by(EVENTS.c.id)
        .limit(1)
    ).one_or_none()
    if accepted is None:
        raise NotKeepable("该材料还没有经代办员核验通过(受理),暂不能放入材料夹")
    uploads = session.scalars(
        select(Upload).where(Upload.id.in_(slot["uploads"])).order_by(Upload.id)
    ).all()
    files = [f for f in map(_File.of, uploads) if f is not None]
    if len(files) != len(slot["uploads"]):
        raise NotKeepable("该材料的照片已按规定删除,请重新拍照")
    name = _material_name(session, order_id, code)
    return _Source(order_id, code, name, accepted.actor_id, accepted.at, files)


def _material_name(session: Session, order_id: int, code: str) -> str:
    """The material's name in the order's guide (居民身份证)."""
    materials = session.scalar(
        select(ItemVersion.materials)
        .join(Order, Order.item_version_id == ItemVersion.id)
        .where(Order.id == order_id)
    )
    for m in materials or []:
        if m.get("code") == code:
            return str(m.get("name") or code)
    return code


async def _copy(ctx: Context, files: list[_File]) -> list[_File]:
    """Each file and its preview again under fresh keys; on a storage failure the copies
    made so far are removed and the caller hears 503."""
    made: list[str] = []
    copies = []
    limit = ctx.settings.storage.max_upload_bytes
    try:
        for f in files:
            now = ctx.now()
            key = stored_key(OBJECTS, f.content_type, now)
            await ctx.store.write(key, await ctx.store.read(f.key, limit), f.content_type)
            made.append(key)
            thumb = None
            if f.thumbnail_key:
                thumb = stored_key(THUMBNAILS, "image/jpeg", now)
                data = await ctx.store.read(f.thumbnail_key, limit)
                await ctx.store.write(thumb, data, "image/jpeg")
                made.append(thumb)
            copies.append(
                _File(key, thumb, f.content_type, f.size, f.width, f.height, f.sha256, f.warnings)
            )
    except StorageError as exc:
        log.warning("wallet copy failed", extra={"files": len(files)})
        await discard(ctx, *made)
        raise errors.StorageUnavailable() from exc
    return copies


def _insert_files(
    session: Session,
    principal: Principal,
    files: list[_File],
    now: datetime,
    *,
    item_id: int,
    kept: bool,
) -> list[int]:
    """Upload rows for copies already stored: ready, the resident's own; the wallet's own
    (kept_for) or fresh ones for a new order (unattached, cleaned up if never used)."""
    ids = []
    for f in files:
        ids.append(
            int(
                session.execute(
                    insert(Upload)
                    .values(
                        owner_id=principal.account_id,
                        purpose="material",
                        status="ready",
                        declared_type=f.content_type,
                        declared_size=f.size,
                        incoming_key="",
                        upload_expires_at=now,
                        raw_cleared_at=now,  # there is no raw file to clear
                        key=f.key,
                        thumbnail_key=f.thumbnail_key,
                        content_type=f.content_type,
                        size=f.size,
                        width=f.width,
                        height=f.height,
                        sha256=f.sha256,
                        warnings=f.warnings,
                        kept_for=f"wallet:{item_id}" if kept else None,
                        wallet_item_id=item_id,
                        created_at=now,
                        completed_at=now,
                    )
                    .returning(Upload.id)
                ).scalar_one()
            )
        )
    return ids


def _expiry(ctx: Context, now: datetime, valid_until: date | None) -> datetime:
    expires = now + timedelta(days=ctx.settings.uploads.wallet_days)
    if valid_until is not None:  # the end of the document's last valid day, local time
        last = datetime.combine(valid_until + timedelta(days=1), time(), ctx.settings.zone)
        expires = min(expires, last.astimezone(UTC))
    return expires


async def keep(
    ctx: Context,
    principal: Principal,
    order_id: int,
    code: str,
    consent: bool,
    valid_until: date | None,
) -> WalletItemView:
    """Keep a verified material of the resident's own order in their wallet."""
    problems = []
    if not consent:
        problems.append({"field": "consent", "message": "请阅读并同意保存证件照片"})
    today = ctx.today()
    if valid_until is not None and valid_until < today:
        problems.append({"field": "validUntil", "message": "证件已过有效期,不能放入材料夹"})
    if problems:
        raise errors.InvalidInput(errors=problems)
    source = await ctx.db.run_read(lambda s: _source(s, principal, order_id, code))
    copies = await _copy(ctx, source.files)

    def write(session: Session) -> WalletItemView:
        kept = session.scalar(
            select(WalletItem.id).where(
                WalletItem.owner_id == principal.account_id,
                WalletItem.removed_at.is_(None),
                WalletItem.expires_at > ctx.now(),
                WalletItem.material_code == code,
                WalletItem.source_order_id == order_id,
            )
        )
        if kept is not None:
            raise AlreadyKept()
        count = session.scalar(
            select(func.count(WalletItem.id)).where(
                WalletItem.owner_id == principal.account_id, WalletItem.removed_at.is_(None)
            )
        )
        if (count or 0) >= MAX_ITEMS:
            raise WalletFull()
        now = ctx.now()
        item = WalletItem(
            owner_id=principal.account_id,
            material_code=code,
            name=source.name,
            source_order_id=order_id,
            verified_by=source.verified_by,
            verified_at=source.verified_at,
            consent_at=now,
            created_at=now,
            expires_at=_expiry(ctx, now, valid_until),
            valid_until=valid_until,
            uses=0,
        )
        session.add(item)
        session.flush()
        _insert_files(session, principal, copies, now, item_id=item.id, kept=True)
        detail = {"order": order_id, "material": code, "consent": CONSENT_TEXT}
        audit.record(session, principal, "wallet.keep", f"wallet:{item.id}", now, detail)
        return _view(session, item)

    try:
        return await ctx.db.run_write(write)
    except Exception:
        await discard(ctx, *_keys(copies))
        raise


# --- using --------------------------------------------------------------------------------


def _usable(session: Session, ctx: Context, principal: Principal, item_id: int) -> list[_File]:
    item = _own_item(session, principal, item_id)
    if item.removed_at is not None or item.expires_at <= ctx.now():
        raise ItemGone()
    uploads = session.scalars(
        select(Upload)
        .where(Upload.kept_for == f"wallet:{item.id}", Upload.removed_at.is_(None))
        .order_by(Upload.id)
    ).all()
    files = [f for f in map(_File.of, uploads) if f is not None]
    if not files:
        raise ItemGone()
    return files


async def use(ctx: Context, principal: Principal, item_id: int) -> UsedItem:
    """Fresh copies of a kept document, to give as that material of a new order."""
    files = await ctx.db.run_read(lambda s: _usable(s, ctx, principal, item_id))
    copies = await _copy(ctx, files)

    def write(session: Session) -> UsedItem:
        item = _own_item(session, principal, item_id)
        now = ctx.now()
        if item.removed_at is not None or item.expires_at <= now:  # removed meanwhile
            raise ItemGone()
        ids = _insert_files(session, principal, copies, now, item_id=item.id, kept=False)
        session.execute(
            update(WalletItem).where(WalletItem.id == item.id).values(uses=WalletItem.uses + 1)
        )
        detail = {"material": item.material_code, "uploads": ids}
        audit.record(session, principal, "wallet.use", f"wallet:{item.id}", now, detail)
        return UsedItem(wallet_item_id=item.id, material_code=item.material_code, upload_ids=ids)

    try:
        return await ctx.db.run_write(write)
    except Exception:
        await discard(ctx, *_keys(copies))
        raise


# --- removing -----------------------------------------------------------------------------


def _wallet_keys(session: Session, item_ids: list[int]) -> list[str]:
    rows = session.execute(
        select(Upload.key, Upload.thumbnail_key).where(
            Upload.kept_for.in_([f"wallet:{i}" for i in item_ids]), Upload.removed_at.is_(None)
        )
    )
    return [k for row in rows for k in row if k]


def _mark_removed(session: Session, item_ids: list[int], why: str, now: datetime) -> None:
    session.execute(
        update(Upload)
        .where(Upload.kept_for.in_([f"wallet:{i}" for i in item_ids]), Upload.removed_at.is_(None))
        .values(removed_at=now, key=None, thumbnail_key=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(WalletItem)
        .where(WalletItem.id.in_(item_ids), WalletItem.removed_at.is_(None))
        .values(removed_at=now, removed_reason=why)
        .execution_options(synchronize_session=False)
    )


async def _remove(ctx: Context, item_ids: list[int], why: str) -> None:
    """Storage first, then the rows say so (as the retention of order files): a storage
    failure leaves the items as they were, to be removed again."""
    keys = await ctx.db.run_read(lambda s: _wallet_keys(s, item_ids))
    try:
        await ctx.store.delete(*keys)
    except StorageError as exc:
        raise errors.StorageUnavailable() from exc
    now = ctx.now()
    await ctx.db.run_write(lambda s: _mark_removed(s, item_ids, why, now))


async def remove(ctx: Context, principal: Principal, item_id: int) -> None:
    """The resident removes a kept document: its files go at once."""
    await ctx.db.run_read(lambda s: _own_item(s, principal, item_id))
    await _remove(ctx, [item_id], "resident")

    def trail(session: Session) -> None:
        audit.record(session, principal, "wallet.remove", f"wallet:{item_id}", ctx.now())

    await ctx.db.run_write(trail)


async def remove_owned(ctx: Context, account_id: int) -> int:
    """A closed account's whole wallet, with its files (the account's 注销)."""
    ids = await ctx.db.run_read(
        lambda s: list(
            s.scalars(
                select(WalletItem.id).where(
                    WalletItem.owner_id == account_id, WalletItem.removed_at.is_(None)
                )
            )
        )
    )
    if not ids:
        return 0
    try:
        await _remove(ctx, ids, "closed")
    except errors.StorageUnavailable:  # the retention run takes them later
        log.exception("closing could not remove wallet files", extra={"items": len(ids)})
        return 0
    return len(ids)


def _expired(session: Session, now: datetime, batch: int) -> list[int]:
    """Items past their expiry, and any left of a closed account (its closing could not
    reach storage)."""
    closed = select(Account.id).where(Account.closed_at.is_not(None))
    return list(
        session.scalars(
            select(WalletItem.id)
            .where(
                WalletItem.removed_at.is_(None),
                (WalletItem.expires_at <= now) | WalletItem.owner_id.in_(closed),
            )
            .order_by(WalletItem.expires_at)
            .limit(batch)
        )
    )


async def remove_expired(ctx: Context, *, batch: int = 200) -> int:
    """The retention job: items past their expiry, with their files. Returns how many."""
    removed = 0
    while not ctx.stopping:
        now = ctx.now()
        due = await ctx.db.run_read(lambda s: _expired(s, now, batch))  # noqa: B023
        if not due:
            break
        try:
            await _remove(ctx, due, "expired")
        except errors.StorageUnavailable:
            log.exception("retention could not remove wallet files", extra={"items": len(due)})
            break
        removed += len(due)
        if len(due) < batch:
            break
    return removed
