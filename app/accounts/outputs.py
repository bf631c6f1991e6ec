"""What the accounts domain shows to callers: masked, decrypted only where allowed."""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from app.kinds import DutyStatus, Post, RegionLevel, Role
from app.models import Account, Region
from app.orders.assignment import DUTY_NAMES, duty_status
from app.security.pii import PiiCipher, mask_id_number, mask_phone

ROLE_NAMES = {"resident": "群众", "agent": "代办员", "dispatcher": "调度员", "admin": "管理员"}


class RegionRef(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    name: str
    level: RegionLevel


class MeView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    role: Role
    role_name: str
    name: str | None
    phone: str | None  # masked: 138****5678
    id_number: str | None  # masked: 110***********1234
    region: RegionRef | None
    profile_complete: bool
    work_phone: str | None = None
    service_hours: str | None = None
    on_duty: bool | None = None
    post: Post | None = None


class TokenPair(msgspec.Struct, rename="camel", kw_only=True):
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime
    account: MeView
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret


class StaffView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    role: Role
    role_name: str
    name: str | None
    region: RegionRef | None
    work_phone: str | None
    staff_number: str | None  # the county's own number (工号), if any
    service_hours: str | None
    on_duty: bool
    duty_status: DutyStatus
    duty_status_name: str
    leave_until: date | None
    post: Post | None
    bound: bool
    binding_expires_at: datetime | None
    disabled: bool
    has_photo: bool  # the public card shows it (挂牌上岗); set by an admin


class StaffCreated(msgspec.Struct, rename="camel", kw_only=True):
    staff: StaffView
    binding_code: str  # shown once; only its hash is stored


class AgentCard(msgspec.Struct, rename="camel", kw_only=True):
    """The public card of a village agent (挂牌上岗): name, photo, duty phone, hours."""

    id: int
    name: str | None
    photo_url: str | None  # a short-lived link; fetch the cards again when it expires
    work_phone: str | None
    service_hours: str | None
    on_duty: bool
    duty_status: DutyStatus
    duty_status_name: str
    leave_until: date | None
    post: Post | None


def region_ref(region: Region | None) -> RegionRef | None:
    return RegionRef(id=region.id, name=region.name, level=region.level) if region else None


def me_view(account: Account, region: Region | None, cipher: PiiCipher) -> MeView:
    phone = cipher.decrypt(account.phone_enc, context="phone") if account.phone_enc else None
    id_number = (
        cipher.decrypt(account.id_number_enc, context="id_number")
        if account.id_number_enc
        else None
    )
    is_staff = account.role != "resident"
    return MeView(
        id=account.id,
        role=account.role,
        role_name=ROLE_NAMES[account.role],
        name=account.name,
        phone=mask_phone(phone),
        id_number=mask_id_number(id_number),
        region=region_ref(region),
        profile_complete=is_staff or bool(account.name and phone and id_number and region),
        work_phone=account.work_phone if is_staff else None,
        service_hours=account.service_hours if is_staff else None,
        on_duty=account.on_duty if is_staff else None,
        post=account.post if is_staff else None,
    )


def staff_view(account: Account, region: Region | None, today: date) -> StaffView:
    status = duty_status(account.on_duty, account.leave_until, today)
    return StaffView(
        id=account.id,
        role=account.role,
        role_name=ROLE_NAMES[account.role],
        name=account.name,
        region=region_ref(region),
        work_phone=account.work_phone,
        staff_number=account.staff_number,
        service_hours=account.service_hours,
        on_duty=status == "on_duty",
        duty_status=status,
        duty_status_name=DUTY_NAMES[status],
        leave_until=account.leave_until if status == "on_leave" else None,
        post=account.post,
        bound=account.openid is not None,
        binding_expires_at=account.binding_expires_at if account.openid is None else None,
        disabled=account.disabled_at is not None,
        has_photo=account.photo_key is not None,
    )


def agent_card(account: Account, today: date, *, photo_url: str | None) -> AgentCard:
    status = duty_status(account.on_duty, account.leave_until, today)
    return AgentCard(
        id=account.id,
        name=account.name,
        photo_url=photo_url,
        work_phone=account.work_phone,
        service_hours=account.service_hours,
        on_duty=status == "on_duty",
        duty_status=status,
        duty_status_name=DUTY_NAMES[status],
        leave_until=account.leave_until if status == "on_leave" else None,
        post=account.post,
    )
