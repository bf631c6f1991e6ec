"""Accounts (residents and staff) and their refresh tokens."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.kinds import Post, Role
from app.models.base import Base, BigId, UTCDateTime


class Account(Base):
    """One person: a resident (from WeChat) or a staff member (created by an admin).

    Phone and ID numbers of residents are personal data: stored only encrypted (`*_enc`)
    with a keyed hash (`*_hash`) for look-ups. A staff `work_phone` is the published
    duty number of the station (挂牌上岗), not personal data.
    """

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("role IN ('resident', 'agent', 'dispatcher', 'admin')", name="role"),
        CheckConstraint("post IS NULL OR post IN ('A', 'B')", name="post"),
        Index("ix_accounts_region_role", "region_id", "role"),
        # The retention job finds residents unseen for long by when they were last seen.
        Index(
            "ix_accounts_idle",
            "last_seen_at",
            postgresql_where=text("role = 'resident' AND closed_at IS NULL"),
            sqlite_where=text("role = 'resident' AND closed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    role: Mapped[Role] = mapped_column(String(12))
    openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(40))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    id_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    work_phone: Mapped[str | None] = mapped_column(String(20))
    # Staff: the county's own number for the person (工号), if it has one; a staff import
    # finds the person again by it (else by work phone).
    staff_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    photo_key: Mapped[str | None] = mapped_column(String(200))
    service_hours: Mapped[str | None] = mapped_column(String(100))
    on_duty: Mapped[bool] = mapped_column(Boolean, default=True)
    # On leave up to and including this business date (then on duty or off as before).
    leave_until: Mapped[date | None] = mapped_column(Date)
    # Set when the phone came from WeChat (getuserphonenumber), which proves it is theirs:
    # only then may orders an agent entered for this ID number and phone join the account.
    phone_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    post: Mapped[Post | None] = mapped_column(String(1))
    binding_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    binding_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A resident's last login or token refresh (at most a day old), or the account's start.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    # 注销: closed by the resident, or for long disuse by the retention job; the person's
    # data is erased then and the row stays only so that their orders keep an owner.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RefreshToken(Base):
    """A rotating refresh token, stored hashed; a family is one login's chain of rotations."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Indexed: access tokens are refused for logins revoked within their lifetime.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Why the login ended (logout, reused, disabled, rebound, replaced, capped): a refresh
    # presenting one of its tokens is told which (errors.ENDED_LOGIN).
    revoked_reason: Mapped[str | None] = mapped_column(String(12))


class ConsoleSignIn(Base):
    """A sign-in to the console waiting for its QR code to be confirmed on a staff phone.

    The code in the QR and the browser's own secret (in a cookie) are different: whoever
    reads the code off the screen can confirm it, but only the browser that asked can take
    the session it starts. Both are stored hashed."""

    __tablename__ = "console_sign_ins"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str | None] = mapped_column(String(45))  # where the browser asked from
    browser: Mapped[str | None] = mapped_column(String(200))  # its User-Agent, cut short
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    scanned_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A staff member signed in to the console in one browser (an httpOnly cookie holds
    the secret whose hash is here). It ends at sign-out, after the idle timeout or the
    absolute lifetime, and with every login of the account (disabled, re-bound)."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(12))
