"""Accounts: WeChat login, token rotation, the person's profile, binding a login to staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import errors
from app.accounts import outputs
from app.accounts.console import end_sessions_of
from app.context import Context
from app.models import Account, RefreshToken, Region
from app.orders.entered import claim_entered_orders
from app.security import identity
from app.security.tokens import (
    Principal,
    new_secret,
    secret_hash,
)
from app.wechat import WeChatSession

SEEN_EVERY = timedelta(days=1)  # how often a login or refresh records that the person was seen


@dataclass
class RefreshResult:
    """Either new tokens, or the error to answer with after the revocation is committed."""

    tokens: outputs.TokenPair | None
    error: errors.DomainError | None = None


def principal_of(account: Account, login_id: str = "") -> Principal:
    return Principal(account.id, account.role, account.region_id, login_id)


def _region(session: Session, region_id: int | None) -> Region | None:
    return session.get(Region, region_id) if region_id else None


def me(session: Session, ctx: Context, principal: Principal) -> outputs.MeView:
    account = _active_account(session, principal.account_id)
    return outputs.me_view(account, _region(session, account.region_id), ctx.cipher)


def _active_account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None or account.disabled_at is not None:
        raise errors.TokenInvalid("账号已停用或不存在,请重新登录")
    return account


# --- login and tokens -------------------------------------------------------------------


def login(session: Session, ctx: Context, wx: WeChatSession) -> outputs.TokenPair:
    """Find the account behind a WeChat openid, creating a resident on first login."""
    account = session.execute(
        select(Account).where(Account.openid == wx.openid)
    ).scalar_one_or_none()
    if account is None:
        account = Account(role="resident", openid=wx.openid, unionid=wx.unionid, on_duty=False)
        session.add(account)
        session.flush()
    elif account.disabled_at is not None:
        raise errors.Forbidden("该账号已停用,请联系便民服务中心")
    elif wx.unionid and account.unionid != wx.unionid:
        account.unionid = wx.unionid
    return issue_tokens(session, ctx, account, family_id=None)


def issue_tokens(
    session: Session, ctx: Context, account: Account, *, family_id: str | None
) -> outputs.TokenPair:
    now = ctx.now()
    if account.last_seen_at is None or account.last_seen_at < now - SEEN_EVERY:
        account.last_seen_at = now  # the retention rules count disuse from here
    if family_id is None:  # a new login: the oldest beyond the cap end
        _cap_logins(session, ctx, account.id)
    family_id = family_id or new_secret()[:32]
    access, access_exp = ctx.tokens.issue(principal_of(account, family_id), now)
    refresh = new_secret()
    refresh_expires_at = now + timedelta(days=ctx.settings.security.refresh_token_ttl_days)
    session.add(
        RefreshToken(
            account_id=account.id,
            family_id=family_id,
            token_hash=secret_hash(refresh),
            created_at=now,
            expires_at=refresh_expires_at,
        )
    )
    region = _region(session, account.region_id)
    return outputs.TokenPair(
        access_token=access,
        access_token_expires_at=now.fromtimestamp(access_exp, tz=now.tzinfo),
        refresh_token=refresh,
        refresh_token_expires_at=refresh_expires_at,
        account=outputs.me_view(account, region, ctx.cipher),
    )


def _cap_logins(session: Session, ctx: Context, account_id: int) -> None:
    """At most `max_logins_per_account` live logins: the oldest end first (a phone lost or
    replaced keeps its login until then; 300 logins in a row leave only the newest)."""
    keep = ctx.settings.security.max_logins_per_account - 1
    _lock_account(session, ctx, account_id)  # two logins at once count each other
    live = (
        select(RefreshToken.family_id)
        .where(
            RefreshToken.account_id == account_id,
            RefreshToken.revoked_at.is_(None),
            RefreshToken.used_at.is_(None),
            RefreshToken.expires_at > ctx.now(),
        )
        .order_by(RefreshToken.created_at.desc(), RefreshToken.id.desc())
    )
    ended = session.scalars(live.offset(keep)).all()
    for family_id in ended:
        revoke_family(session, ctx, family_id, "capped")


def refresh(session: Session, ctx: Context, token: str) -> RefreshResult:
    """Rotate a refresh token. Presenting an already rotated one revokes its whole family;
    a token of a login that has ended is told why it ended."""
    now = ctx.now()
    row = session.execute(
        select(RefreshToken).where(RefreshToken.token_hash == secret_hash(token))
    ).scalar_one_or_none()
    if row is None:
        return RefreshResult(None, errors.TokenInvalid())
    if _lock_account(session, ctx, row.account_id):
        session.refresh(row)  # as it is now that no revocation can run beside us
    if row.revoked_at is not None:
        return RefreshResult(
            None, errors.ENDED_LOGIN.get(row.revoked_reason or "", errors.SessionEnded)()
        )
    if row.used_at is not None:
        revoke_family(session, ctx, row.family_id, "reused")
        return RefreshResult(None, errors.RefreshReused())
    if row.expires_at <= now:
        return RefreshResult(None, errors.TokenExpired())
    # Compare-and-set: of two requests racing with one token, exactly one rotates it.
    claimed = session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == row.id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        revoke_family(session, ctx, row.family_id, "reused")
        return RefreshResult(None, errors.RefreshReused())
    account = session.get(Account, row.account_id)
    if account is None or account.disabled_at is not None:
        revoke_family(session, ctx, row.family_id, "disabled")
        return RefreshResult(None, errors.AccountDisabled())
    return RefreshResult(issue_tokens(session, ctx, account, family_id=row.family_id))


def _lock_account(session: Session, ctx: Context, account_id: int) -> bool:
    """Refreshes and revocations of one account take turns, so a refresh cannot add a token
    to a login a revocation beside it is ending (ctx.db.lock_row)."""
    return ctx.db.lock_row(session, Account.id, account_id)


def revoke_family(session: Session, ctx: Context, family_id: str, reason: str) -> None:
    """End one login: its refresh tokens, and its access tokens on their next request."""
    owner = session.scalar(
        select(RefreshToken.account_id).where(RefreshToken.family_id == family_id).limit(1)
    )
    if owner is not None:
        _lock_account(session, ctx, owner)
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=ctx.now(), revoked_reason=reason)
    )
    ctx.revocations.announce(session)


def logout(session: Session, ctx: Context, token: str) -> None:
    row = session.execute(
        select(RefreshToken).where(RefreshToken.token_hash == secret_hash(token))
    ).scalar_one_or_none()
    if row is not None:
        revoke_family(session, ctx, row.family_id, "logout")


def revoke_all(session: Session, account_id: int, ctx: Context, reason: str) -> None:
    """End every login of an account (disabled, re-bound to another phone, replaced)."""
    _lock_account(session, ctx, account_id)
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=ctx.now(), revoked_reason=reason)
    )
    ctx.revocations.announce(session)
    end_sessions_of(session, ctx, account_id, reason)


# --- the resident's own profile ---------------------------------------------------------


@dataclass
class ProfileChange:
    name: str | None = None
    village_id: int | None = None
    phone: str | None = None
    id_number: str | None = None
    phone_verified: bool = False  # the phone came from WeChat's getuserphonenumber


def update_profile(
    session: Session, ctx: Context, principal: Principal, change: ProfileChange
) -> outputs.MeView:
    account = _active_account(session, principal.account_id)
    if account.role != "resident":
        raise errors.Forbidden("工作人员的资料由管理员维护")
    problems: dict[str, str] = {}
    if change.name is not None:
        name = change.name.strip()
        if not 2 <= len(name) <= 20:
            problems["name"] = "姓名应为2到20个字"
        else:
            account.name = name
    if change.phone is not None:
        if not identity.is_mobile(change.phone):
            problems["phone"] = "请填写11位手机号码"
        else:
            set_phone(account, ctx, change.phone, verified=change.phone_verified)
    if change.id_number is not None:
        number = identity.normalize_id_number(change.id_number)
        problem = identity.id_number_problem(number, today=ctx.today())
        if problem:
            problems["idNumber"] = problem
        else:
            account.id_number_enc = ctx.cipher.encrypt(number, context="id_number")
            account.id_number_hash = ctx.cipher.lookup_hash(number, context="id_number")
    if change.village_id is not None:
        village = session.get(Region, change.village_id)
        if village is None or village.level != "village":
            problems["villageId"] = "没有找到该村(社区)"
        elif village.retired_at is not None:
            problems["villageId"] = f"{village.name}已撤销, 请选择现在所在的村(社区)"
        else:
            account.region_id = village.id
    if problems:
        raise errors.InvalidInput(
            "填写的内容有误", errors=[{"field": f, "message": m} for f, m in problems.items()]
        )
    session.flush()
    claim_entered_orders(session, ctx, account)
    return outputs.me_view(account, _region(session, account.region_id), ctx.cipher)


def set_phone(account: Account, ctx: Context, phone: str, *, verified: bool = False) -> None:
    """A phone typed by hand keeps an earlier WeChat confirmation only if it is the same."""
    phone_hash = ctx.cipher.lookup_hash(phone, context="phone")
    if verified:
        account.phone_verified_at = ctx.now()
    elif phone_hash != account.phone_hash:
        account.phone_verified_at = None
    account.phone_enc = ctx.cipher.encrypt(phone, context="phone")
    account.phone_hash = phone_hash


def phone_from_wechat(
    session: Session, ctx: Context, principal: Principal, phone: str
) -> outputs.MeView:
    if not identity.is_mobile(phone):
        raise errors.InvalidInput("暂只支持中国大陆手机号")
    change = ProfileChange(phone=phone, phone_verified=True)
    return update_profile(session, ctx, principal, change)


# --- binding a WeChat login to a staff account ----------------------------------------


def bind_staff(
    session: Session, ctx: Context, principal: Principal, code: str
) -> outputs.TokenPair:
    """The logged-in WeChat user becomes the staff account the code was issued for."""
    caller = _active_account(session, principal.account_id)
    if caller.role != "resident":
        raise errors.AlreadyStaff()
    now = ctx.now()
    staff = session.execute(
        select(Account).where(Account.binding_code_hash == secret_hash(code.strip().upper()))
    ).scalar_one_or_none()
    if (
        staff is None
        or staff.disabled_at is not None
        or staff.binding_expires_at is None
        or staff.binding_expires_at <= now
    ):
        raise errors.BindingCodeInvalid()
    # Compare-and-set on the code: two phones redeeming one code, exactly one wins.
    openid, unionid = caller.openid, caller.unionid
    caller.openid = None
    session.flush()
    won = session.execute(
        update(Account)
        .where(Account.id == staff.id, Account.binding_code_hash == staff.binding_code_hash)
        .values(openid=openid, unionid=unionid, binding_code_hash=None, binding_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.BindingCodeInvalid()
    revoke_all(session, caller.id, ctx, "replaced")
    caller.disabled_at = now  # the bare resident login is replaced by the staff account
    session.refresh(staff)
    return issue_tokens(session, ctx, staff, family_id=None)
