"""Signing in to the town-centre console: a QR code the browser shows, confirmed on a staff
member's phone in the mini-program (扫码登录), and the browser sessions it starts.

A session ends at sign-out, after the idle timeout or its absolute lifetime, and with every
login of its account (`end_sessions_of`, called where logins end: disabled, re-bound,
closed). Each console request reads its session row, so an ended session stops at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from app import audit, errors
from app.context import Context
from app.models import Account, ConsoleSession, ConsoleSignIn, Region
from app.security.tokens import Principal, new_secret, secret_hash

# Who may use the console: town-centre dispatchers and district admins.
CONSOLE_ROLES = ("dispatcher", "admin")
# A session's last-seen time is written at most this often (a write per page costs more).
TOUCH_EVERY = timedelta(minutes=1)
# A confirmed sign-in is taken by its browser's next question (every 2 s); past its code's
# validity and this much more, it is not taken at all.
TAKE_WITHIN = timedelta(seconds=30)
# What the daily clean-up removes: sign-ins a day old, sessions ended a month ago (the
# audit log keeps every sign-in).
SIGN_INS_KEPT = timedelta(days=1)
SESSIONS_KEPT = timedelta(days=30)

SignInState = Literal["waiting", "scanned", "confirmed", "expired"]


class SignInStart(msgspec.Struct, kw_only=True):
    code: str  # shown in the QR code; a phone confirms it
    browser_secret: str  # kept in the browser's cookie; only it takes the session
    expires_at: datetime


class SignInRequest(msgspec.Struct, rename="camel", kw_only=True):
    """What the phone shows before its holder confirms: where the sign-in comes from."""

    address: str | None
    browser: str | None
    requested_at: datetime
    expires_at: datetime


class SignInProgress(msgspec.Struct, kw_only=True):
    state: SignInState
    session_token: str | None = None  # once confirmed: the new session's secret
    # Whose phone read the code: the screen says so, so a person sees at once whether the
    # sign-in is theirs (someone else's phone may have read it off the screen).
    scanned_by: str | None = None


class ConsoleUser(msgspec.Struct, kw_only=True):
    principal: Principal
    session_id: int
    name: str | None
    region_name: str | None
    seen_at: datetime


def _require_console_role(principal: Principal) -> None:
    if principal.role not in CONSOLE_ROLES:
        raise errors.ConsoleStaffOnly()


def start_sign_in(
    session: Session, ctx: Context, address: str | None, browser: str | None
) -> SignInStart:
    now = ctx.now()
    code, browser_secret = new_secret(), new_secret()
    expires_at = now + timedelta(seconds=ctx.settings.console.sign_in_seconds)
    session.add(
        ConsoleSignIn(
            code_hash=secret_hash(code),
            browser_hash=secret_hash(browser_secret),
            address=(address or "")[:45] or None,
            browser=(browser or "")[:200] or None,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return SignInStart(code=code, browser_secret=browser_secret, expires_at=expires_at)


def _waiting_sign_in(session: Session, ctx: Context, code: str) -> ConsoleSignIn:
    row = session.scalar(select(ConsoleSignIn).where(ConsoleSignIn.code_hash == secret_hash(code)))
    if row is None or row.expires_at <= ctx.now() or row.confirmed_at is not None:
        raise errors.SignInInvalid()
    return row


def scan_sign_in(session: Session, ctx: Context, principal: Principal, code: str) -> SignInRequest:
    """The phone read the QR code: the browser shows 已扫码, the phone where it came from."""
    _require_console_role(principal)
    row = _waiting_sign_in(session, ctx, code)
    row.scanned_by = principal.account_id
    return SignInRequest(
        address=row.address,
        browser=row.browser,
        requested_at=row.created_at,
        expires_at=row.expires_at,
    )


def confirm_sign_in(session: Session, ctx: Context, principal: Principal, code: str) -> None:
    """The staff member confirmed on the phone: the browser that asked may take a session."""
    _require_console_role(principal)
    row = _waiting_sign_in(session, ctx, code)
    now = ctx.now()
    # Compare-and-set: of two phones confirming one code, exactly one wins.
    won = session.execute(
        update(ConsoleSignIn)
        .where(
            ConsoleSignIn.id == row.id,
            ConsoleSignIn.confirmed_at.is_(None),
            ConsoleSignIn.expires_at > now,
        )
        .values(confirmed_by=principal.account_id, confirmed_at=now)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.SignInInvalid()


def take_sign_in(
    session: Session, ctx: Context, browser_secret: str, address: str | None
) -> SignInProgress:
    """The browser asks how its sign-in is going; once confirmed, it gets its session (once)."""
    now = ctx.now()
    row = session.scalar(
        select(ConsoleSignIn).where(ConsoleSignIn.browser_hash == secret_hash(browser_secret))
    )
    if row is None or row.used_at is not None:
        return SignInProgress(state="expired")
    if row.confirmed_at is None:
        if row.expires_at <= now:
            return SignInProgress(state="expired")
        if row.scanned_by is None:
            return SignInProgress(state="waiting")
        scanner = session.get(Account, row.scanned_by)
        return SignInProgress(state="scanned", scanned_by=scanner.name if scanner else None)
    if row.expires_at + TAKE_WITHIN <= now:
        return SignInProgress(state="expired")
    taken = session.execute(
        update(ConsoleSignIn)
        .where(ConsoleSignIn.id == row.id, ConsoleSignIn.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return SignInProgress(state="expired")
    account = session.get(Account, row.confirmed_by)
    if account is None:
        return SignInProgress(state="expired")
    token = start_session(session, ctx, account, address, how="qr")
    return SignInProgress(state="confirmed", session_token=token)


def start_session(
    session: Session, ctx: Context, account: Account, address: str | None, *, how: str
) -> str:
    """A new console session for a staff member (after a QR confirmation, or a dev code)."""
    if account.disabled_at is not None or account.closed_at is not None:
        raise errors.AccountDisabled()
    if account.role not in CONSOLE_ROLES:
        raise errors.ConsoleStaffOnly()
    now = ctx.now()
    token = new_secret()
    settings = ctx.settings.console
    session.add(
        ConsoleSession(
            account_id=account.id,
            token_hash=secret_hash(token),
            address=(address or "")[:45] or None,
            created_at=now,
            seen_at=now,
            expires_at=now + timedelta(hours=settings.session_hours),
        )
    )
    principal = Principal(account.id, account.role, account.region_id)
    audit.record(session, principal, "console.sign_in", f"account:{account.id}", now, {"how": how})
    return token


def staff_by_openid(session: Session, openid: str) -> Account:
    account = session.scalar(select(Account).where(Account.openid == openid))
    if account is None or account.role not in CONSOLE_ROLES:
        raise errors.ConsoleStaffOnly()
    return account


def session_user(session: Session, ctx: Context, token: str) -> ConsoleUser:
    """The staff member of a console session, or 401 when it has ended for any reason."""
    now = ctx.now()
    idle = timedelta(minutes=ctx.settings.console.session_idle_minutes)
    row = session.execute(
        select(ConsoleSession, Account)
        .join(Account, Account.id == ConsoleSession.account_id)
        .where(ConsoleSession.token_hash == secret_hash(token))
    ).one_or_none()
    if row is None:
        raise errors.ConsoleSignedOut()
    console_session, account = row
    if console_session.ended_at is not None:
        raise errors.ENDED_LOGIN.get(console_session.ended_reason or "", errors.ConsoleSignedOut)()
    if account.disabled_at is not None or account.role not in CONSOLE_ROLES:
        raise errors.AccountDisabled()
    if console_session.expires_at <= now or console_session.seen_at <= now - idle:
        raise errors.ConsoleSessionExpired()
    region = session.get(Region, account.region_id) if account.region_id else None
    return ConsoleUser(
        principal=Principal(
            account.id, account.role, account.region_id, f"console:{console_session.id}"
        ),
        session_id=console_session.id,
        name=account.name,
        region_name=region.name if region else None,
        seen_at=console_session.seen_at,
    )


def touch_session(session: Session, ctx: Context, session_id: int) -> None:
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id, ConsoleSession.ended_at.is_(None))
        .values(seen_at=ctx.now())
    )


def end_session(session: Session, ctx: Context, token: str) -> None:
    """Sign out: this browser's session ends (others of the same person go on)."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_hash == secret_hash(token), ConsoleSession.ended_at.is_(None))
        .values(ended_at=ctx.now(), ended_reason="logout")
    )


def end_sessions_of(session: Session, ctx: Context, account_id: int, reason: str) -> None:
    """Every console session of an account ends with its logins (disabled, re-bound, ...),
    and a sign-in it confirmed that no browser has taken yet is taken by none."""
    now = ctx.now()
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.account_id == account_id, ConsoleSession.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason)
    )
    session.execute(
        update(ConsoleSignIn)
        .where(ConsoleSignIn.confirmed_by == account_id, ConsoleSignIn.used_at.is_(None))
        .values(used_at=now)
    )


def clean_up(session: Session, ctx: Context) -> int:
    """Old sign-ins (each page of the sign-in screen makes one) and long-ended sessions;
    how many rows went."""
    now = ctx.now()
    sign_ins = session.execute(
        delete(ConsoleSignIn).where(ConsoleSignIn.expires_at < now - SIGN_INS_KEPT)
    )
    sessions = session.execute(
        delete(ConsoleSession).where(
            or_(
                ConsoleSession.ended_at < now - SESSIONS_KEPT,
                ConsoleSession.expires_at < now - SESSIONS_KEPT,
            )
        )
    )
    return int(sign_ins.rowcount or 0) + int(sessions.rowcount or 0)  # type: ignore[attr-defined]
