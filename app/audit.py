"""The audit log: one row per read or export of personal data and per change of the
catalogue, staff, the calendar or dispatch settings, in the transaction of the act itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Insert, insert, select
from sqlalchemy.orm import Session

from app.models import Account, AuditEntry, Region
from app.models.tables import AUDIT
from app.security.tokens import Principal

MAX_PAGE = 100


def _entry(
    principal: Principal | None,
    action: str,
    target: str,
    at: datetime,
    detail: dict[str, Any] | None,
    purpose: str | None,
) -> Insert:
    return insert(AUDIT).values(
        at=at,
        actor_id=principal.account_id if principal else None,
        actor_role=principal.role if principal else "system",
        region_id=principal.region_id if principal else None,
        action=action,
        target=target[:120],
        purpose=purpose,
        detail=detail,
    )


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    target: str,
    at: datetime,
    detail: dict[str, Any] | None = None,
    purpose: str | None = None,
) -> None:
    session.execute(_entry(principal, action, target, at, detail, purpose))


class AuditView(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    at: datetime
    actor_id: int | None
    actor_name: str | None
    actor_role: str
    action: str
    target: str
    purpose: str | None
    detail: dict[str, Any] | None


def entries(
    session: Session,
    principal: Principal,
    *,
    action: str | None,
    actor_id: int | None,
    cursor: int | None,
    limit: int,
) -> list[AuditView]:
    """Newest first. An admin reads what happened in their district (by actors of it)."""
    query = (
        select(AuditEntry, Account.name)
        .outerjoin(Account, Account.id == AuditEntry.actor_id)
        .outerjoin(Region, Region.id == AuditEntry.region_id)
        .where(
            (Region.district_id == principal.region_id)
            | (AuditEntry.region_id == principal.region_id)
        )
    )
    if action:
        query = query.where(AuditEntry.action == action)
    if actor_id:
        query = query.where(AuditEntry.actor_id == actor_id)
    if cursor:
        query = query.where(AuditEntry.id < cursor)
    rows = session.execute(query.order_by(AuditEntry.id.desc()).limit(min(limit, MAX_PAGE)))
    return [
        AuditView(
            id=e.id,
            at=e.at,
            actor_id=e.actor_id,
            actor_name=name,
            actor_role=e.actor_role,
            action=e.action,
            target=e.target,
            purpose=e.purpose,
            detail=e.detail,
        )
        for e, name in rows
    ]
