"""Writing notifications: one row per person, in the transaction of the change that causes
it, once per dedupe key (a retried request or a re-run job adds nothing)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, bindparam, select, text
from sqlalchemy.orm import Session

from app.context import Context
from app.models import Notification
from app.models.tables import ACCOUNTS
from app.statements import DriverStatement

CACHE_SECONDS = 60.0

# The same SQL on SQLite and PostgreSQL; a plain statement keeps its compiled form cached.
INSERT = DriverStatement(
    text(
        "INSERT INTO notifications (dedupe_key, recipient_id, kind, order_id, title, body, data, "
        "created_at, wechat_status, template_id, attempts, next_attempt_at) VALUES (:dedupe_key, "
        ":recipient_id, :kind, :order_id, :title, :body, :data, :created_at, :wechat_status, "
        ":template_id, 0, :next_attempt_at) ON CONFLICT (dedupe_key) DO NOTHING"
    ).bindparams(
        bindparam("data", type_=JSON),
        bindparam("created_at", type_=Notification.created_at.type),
        bindparam("next_attempt_at", type_=Notification.next_attempt_at.type),
    )
)
TOWN_DISPATCHERS = select(ACCOUNTS.c.id).where(
    ACCOUNTS.c.region_id == bindparam("town"),
    ACCOUNTS.c.role == "dispatcher",
    ACCOUNTS.c.disabled_at.is_(None),
)


@dataclass(frozen=True)
class Message:
    """What one notification says: its kind, Chinese title and text, and the values a
    subscription template may use (number, item, status, dueAt, note, time, …)."""

    kind: str
    title: str
    body: str
    data: dict[str, Any]
    order_id: int | None = None


def notify(
    session: Session,
    ctx: Context,
    recipients: list[int],
    message: Message,
    key: str,
    now: datetime,
) -> None:
    """Queue `message` for each recipient; `key` is unique to the cause (the recipient is
    added to it)."""
    if not recipients:
        return
    template = ctx.templates().get(message.kind)
    INSERT.many(
        session.connection(),
        [
            {
                "dedupe_key": f"{key}:{recipient}"[:120],
                "recipient_id": recipient,
                "kind": message.kind,
                "order_id": message.order_id,
                "title": message.title,
                "body": message.body,
                "data": message.data,
                "created_at": now,
                "wechat_status": "pending" if template else "no_template",
                "template_id": template.id if template else None,
                "next_attempt_at": now if template else None,
            }
            for recipient in dict.fromkeys(recipients)
        ],
    )


def town_dispatchers(session: Session, ctx: Context, town_id: int) -> list[int]:
    """The town's dispatchers, kept a minute per process: they change a few times a year,
    and every order entering the pool asks (a new dispatcher hears within the minute)."""
    cache: dict[int, tuple[float, list[int]]] = ctx.caches.setdefault("dispatchers", {})
    found = cache.get(town_id)
    if found is None or time.monotonic() - found[0] > CACHE_SECONDS:
        found = (
            time.monotonic(),
            list(session.execute(TOWN_DISPATCHERS, {"town": town_id}).scalars()),
        )
        cache[town_id] = found
    return list(found[1])
