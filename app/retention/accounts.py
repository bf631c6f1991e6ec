"""注销: a resident closes their account, or the retention job closes one unused for long.

What goes: name, phone, ID number (and their look-up hashes), the WeChat openid and unionid
(the same WeChat logs in afresh as a new person), the village, every login, the message
inbox, the subscription credits and the material wallet with its files. What stays, and why
(docs/operations.md): the orders, their timelines, ratings and complaints, owned by the
closed account and so without a name, ID number or phone — the monthly ledgers and the
district's figures are records of public service the county must keep; the audit log
entries, for their own years."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from app import audit, errors
from app.accounts.service import revoke_all
from app.context import Context
from app.models import Account, Notification, Order, SubscriptionCredit
from app.orders.states import FINAL, OPEN
from app.retention.files import remove_files
from app.security.tokens import Principal
from app.uploads.wallet import remove_owned

# Work still owed to the person: closing waits until it is done or withdrawn. A delivered
# order only waits for a rating, which closing forgoes (the default one is recorded).
OWED = OPEN | {"completed"}


class ClosedAccount(msgspec.Struct, rename="camel", kw_only=True):
    closed_at: datetime
    orders_kept: int  # the person's orders, kept for the ledgers with the person anonymised
    order_files_removed: int  # ended orders whose files went with the account


@dataclass
class _Closing:
    closed_at: datetime
    orders_kept: int
    ended_with_files: list[int]


def _owed_numbers(session: Session, account_id: int) -> list[str]:
    return list(
        session.scalars(
            select(Order.number)
            .where(Order.resident_id == account_id, Order.status.in_(OWED))
            .order_by(Order.id)
            .limit(20)
        )
    )


def _erase(
    session: Session, ctx: Context, principal: Principal | None, account_id: int, now: datetime
) -> _Closing:
    session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(
            name=None,
            phone_enc=None,
            phone_hash=None,
            phone_verified_at=None,
            id_number_enc=None,
            id_number_hash=None,
            openid=None,
            unionid=None,
            region_id=None,
            closed_at=now,
            disabled_at=now,
            updated_at=now,
        )
    )
    revoke_all(session, account_id, ctx, "closed")
    session.execute(delete(Notification).where(Notification.recipient_id == account_id))
    session.execute(delete(SubscriptionCredit).where(SubscriptionCredit.account_id == account_id))
    orders = session.execute(
        select(Order.id, Order.status, Order.files_removed_at).where(
            Order.resident_id == account_id
        )
    ).all()
    ended = [o.id for o in orders if o.status in FINAL and o.files_removed_at is None]
    audit.record(
        session,
        principal,
        "account.close",
        f"account:{account_id}",
        now,
        {"by": "self" if principal else "idle", "orders": len(orders)},
    )
    return _Closing(now, len(orders), ended)


def _close_own(session: Session, ctx: Context, principal: Principal) -> _Closing:
    ctx.db.lock_row(session, Account.id, principal.account_id)
    account = session.get(Account, principal.account_id)
    if account is None or account.role != "resident" or account.disabled_at is not None:
        raise errors.Forbidden("只有群众本人可以注销自己的账号")
    owed = _owed_numbers(session, account.id)
    if owed:
        raise errors.OrdersStillOpen(
            f"还有 {len(owed)} 件未办结: {'、'.join(owed)}。办结或撤回后才能注销", orders=owed
        )
    return _erase(session, ctx, principal, account.id, ctx.now())


async def close_own_account(ctx: Context, principal: Principal) -> ClosedAccount:
    """The resident's own 注销, after they confirmed it; their ended orders' files go at once."""
    closing = await ctx.db.run_write(lambda s: _close_own(s, ctx, principal))
    removed = await remove_files(ctx, closing.ended_with_files)
    await remove_owned(ctx, principal.account_id)  # the material wallet, with its files
    return ClosedAccount(
        closed_at=closing.closed_at,
        orders_kept=closing.orders_kept,
        order_files_removed=removed,
    )


def _unused_since(cutoff: datetime) -> tuple[object, ...]:
    """Not seen since `cutoff`, nothing owed, no order that ended since then."""
    recent = exists().where(
        Order.resident_id == Account.id,
        Order.status.not_in(FINAL) | (Order.ended_at >= cutoff),
    )
    return (
        Account.role == "resident",
        Account.closed_at.is_(None),
        Account.last_seen_at < cutoff,
        ~recent,
    )


def idle_accounts(session: Session, cutoff: datetime, limit: int) -> list[int]:
    """Residents unused since `cutoff`, through ix_accounts_idle: oldest first."""
    return list(
        session.scalars(
            select(Account.id)
            .where(*_unused_since(cutoff))  # type: ignore[arg-type]
            .order_by(Account.last_seen_at)
            .limit(limit)
        )
    )


def close_idle(
    session: Session, ctx: Context, account_id: int, cutoff: datetime
) -> list[int] | None:
    """Close one unused account if it still is (checked again under its lock); returns the
    ended orders whose files are to go with it, or None when it was in use after all."""
    ctx.db.lock_row(session, Account.id, account_id)
    still = session.scalar(
        select(Account.id).where(Account.id == account_id, *_unused_since(cutoff))  # type: ignore[arg-type]
    )
    if still is None:
        return None
    return _erase(session, ctx, None, account_id, ctx.now()).ended_with_files
