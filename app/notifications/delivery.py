"""Sending the WeChat copies of notifications: claim, spend a subscription, send, record.

Claims are a guarded UPDATE of rows no one else holds (PostgreSQL: FOR UPDATE SKIP LOCKED;
SQLite: one writer), with a lease, so several workers never take one row. Before a message
goes out its row says so (`send_started_at`), committed before the send: a worker killed
after that leaves the row "uncertain" when the lease lapses, and it is never sent again.
WeChat has no idempotency key, so "never twice" needs exactly this; the inbox copy is there
either way.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from app import errors
from app.context import Context
from app.models.tables import ACCOUNTS, CREDITS
from app.models.tables import NOTIFICATIONS as N
from app.statements import DriverStatement
from app.wechat import WeChatError, WeChatNoAnswer

log = logging.getLogger("daiban.delivery")
T = TypeVar("T")
LEASE = timedelta(minutes=5)
UNSUBSCRIBED = 43101
# WeChat's own "try again later": system busy, API rate limits.
TRANSIENT_CODES = frozenset({-1, 45009, 45011})
WORKER = f"{socket.gethostname()}:{os.getpid()}"

WAITING = ("pending", "sending")  # a WeChat copy still to send (or being sent)
_DUE = (
    select(N.c.id)
    .where(
        N.c.wechat_status.in_(WAITING),
        N.c.next_attempt_at <= bindparam("now"),
        N.c.send_started_at.is_(None),
    )
    .order_by(N.c.next_attempt_at, N.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
CLAIM = (
    update(N)
    .where(N.c.id.in_(_DUE))
    .values(
        wechat_status="sending",
        claimed_by=bindparam("worker"),
        next_attempt_at=bindparam("lease"),
    )
    .returning(N.c.id, N.c.recipient_id, N.c.template_id)
)
# A row whose send began under a claim that lapsed: its worker died mid-send.
LAPSED = (
    update(N)
    .where(
        N.c.wechat_status == "sending",
        N.c.next_attempt_at <= bindparam("now"),
        N.c.send_started_at.is_not(None),
    )
    .values(wechat_status="uncertain", last_error="发送中断(进程退出),不再重发")
)
# Claimed, never begun (the process is stopping): due again now, for any worker.
RELEASE = (
    update(N)
    .where(
        N.c.id.in_(bindparam("ids", expanding=True)),
        N.c.claimed_by == bindparam("worker"),
        N.c.wechat_status == "sending",
        N.c.send_started_at.is_(None),
    )
    .values(claimed_by=None, next_attempt_at=bindparam("now"))
)
SPEND = DriverStatement(
    update(CREDITS)
    .where(
        CREDITS.c.account_id == bindparam("account"),
        CREDITS.c.template_id == bindparam("template"),
        CREDITS.c.credits > 0,
    )
    .values(credits=CREDITS.c.credits - 1, updated_at=bindparam("now"))
)
REFUND = DriverStatement(
    update(CREDITS)
    .where(
        CREDITS.c.account_id == bindparam("account"),
        CREDITS.c.template_id == bindparam("template"),
    )
    .values(credits=CREDITS.c.credits + 1, updated_at=bindparam("now"))
)
MINE = and_(N.c.id == bindparam("nid"), N.c.claimed_by == bindparam("worker"))
# A claimed message's send begun, while this worker's claim holds and no send of it has
# begun, giving what the send needs (its recipient's openid among it).
BEGIN = DriverStatement(
    update(N)
    .where(MINE, N.c.wechat_status == "sending", N.c.send_started_at.is_(None))
    .values(send_started_at=bindparam("now"))
    .returning(
        N.c.id,
        N.c.order_id,
        N.c.attempts,
        N.c.data,
        select(ACCOUNTS.c.openid)
        .where(ACCOUNTS.c.id == N.c.recipient_id)
        .scalar_subquery()
        .label("openid"),
    )
)
ZERO = DriverStatement(
    update(CREDITS)
    .where(
        CREDITS.c.account_id == bindparam("account"),
        CREDITS.c.template_id == bindparam("template"),
    )
    .values(credits=0, updated_at=bindparam("now"))
)


@dataclass(frozen=True)
class Outgoing:
    id: int
    openid: str
    recipient_id: int
    template_id: str
    order_id: int | None
    attempts: int
    fields: dict[str, Any]

    @property
    def key(self) -> Key:
        return (self.recipient_id, self.template_id, self.id)


# A claimed message's order among the writes of a transaction that touch subscriptions:
# (recipient, template, id). Credit rows are locked in this order by every such transaction
# of every worker, so several messages can begin in one transaction without two workers'
# transactions each waiting for a row the other holds.
Key = tuple[int, str, int]


def claim(session: Session, ctx: Context, worker: str, limit: int) -> list[Key]:
    now = ctx.now()
    session.execute(LAPSED, {"now": now})
    claimed = session.execute(
        CLAIM, {"now": now, "limit": limit, "worker": worker, "lease": now + LEASE}
    )
    return [(row.recipient_id, row.template_id or "", row.id) for row in claimed]


def start(session: Session, ctx: Context, worker: str, key: Key) -> Outgoing | None:
    """Spend the person's subscription and mark the send as begun; None when there is
    nothing to send (no template, no credit left, no openid, or the claim was lost)."""
    now = ctx.now()
    account, template_id, notification_id = key
    template = next((t for t in ctx.templates().values() if t.id == template_id), None)
    if template is None:
        _finish(session, notification_id, worker, wechat_status="no_template", next_attempt_at=None)
        return None
    # Two statements when all is well: the credit spent (the claim gave whose and which),
    # then the begin, which gives back the rest. Each is built once and run on the driver
    # (app/statements.py): building a statement and SQLAlchemy's execute cost more than
    # PostgreSQL takes to run it, once per message (bench/jobs.py).
    credit = {"account": account, "template": template_id, "now": now}
    if SPEND.rowcount(session.connection(), credit) != 1:
        # (and when the claim was lost meanwhile, this changes nothing)
        _finish(session, notification_id, worker, wechat_status="no_credit", next_attempt_at=None)
        return None
    row = BEGIN.one_or_none(
        session.connection(), {"nid": notification_id, "worker": worker, "now": now}
    )
    if row is None or not row.openid:
        REFUND.rowcount(session.connection(), credit)  # nothing goes out: the credit back
        if row is not None:
            _finish(
                session,
                notification_id,
                worker,
                wechat_status="no_openid",
                send_started_at=None,
                next_attempt_at=None,
            )
        return None
    return Outgoing(
        id=row.id,
        openid=row.openid,
        recipient_id=account,
        template_id=template_id,
        order_id=row.order_id,
        attempts=row.attempts,
        fields=template_fields(template.fields, row.data, ctx),
    )


def _finish(
    session: Session, notification_id: int, worker: str, *, keep: bool = False, **values: Any
) -> None:
    params = {f"new_{name}": value for name, value in values.items()}
    params |= {"nid": notification_id, "worker": worker}
    _finishing(tuple(values), keep).rowcount(session.connection(), params)


@functools.cache
def _finishing(names: tuple[str, ...], keep: bool) -> DriverStatement:
    """The update of a claimed message that sets `names` (each from the parameter `new_`
    + its name) and, unless `keep`, ends the claim: one statement per set of names."""
    values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in names}
    if not keep:
        values["claimed_by"] = None
    return DriverStatement(update(N).where(MINE).values(values))


async def deliver_due(
    ctx: Context, worker: str = WORKER, limit: int | None = None, batches: int = 1
) -> int:
    """Send what is due, in up to `batches` claims of `limit` messages; returns how many
    rows were settled (sent or not). The next claim is taken as soon as every message of
    the last one has begun, so the sends in flight never wait for a batch's slowest answer
    (a batch of 50 with 32 in flight would otherwise take two WeChat round trips, the
    second with 18 in flight); claiming stops at a claim of fewer than `limit`. Once the
    process is stopping, no send begins: those in flight finish, and what was claimed but
    not begun is handed back at once, due now, for the next worker."""
    if ctx.stopping:
        return 0
    batch = limit or ctx.settings.scheduler.delivery_batch
    # messages in flight at once (DAIBAN_SCHEDULER_DELIVERY_CONCURRENCY), whatever batch
    # they came in: a message holds its place from its begin to its outcome's commit, so no
    # more than these are ever begun and not settled (what a SIGKILL can leave uncertain)
    gate = asyncio.Semaphore(ctx.settings.scheduler.delivery_concurrency)
    claimed: list[int] = []
    begun: set[int] = set()
    # The begins and the outcomes of the messages in flight that come while one
    # transaction of them is committing go together in the next (see _Together): begins
    # and outcomes in the same transactions took a third fewer than each in their own.
    together = _Together(ctx)
    sending: list[asyncio.Task[None]] = []

    async def one(key: Key, placed: Callable[[], None]) -> None:
        notification_id = key[2]

        def begin(session: Session) -> Outgoing | None:
            return start(session, ctx, worker, key)

        try:
            await gate.acquire()
        finally:
            placed()
        try:
            if ctx.stopping:
                return
            begun.add(notification_id)
            outgoing = await together(begin, key)
            if outgoing is not None:
                await _send(ctx, worker, outgoing, together)
        finally:
            gate.release()

    try:
        for _ in range(batches):
            keys = await ctx.db.run_write(lambda s: claim(s, ctx, worker, batch))
            claimed += [key[2] for key in keys]
            if keys:
                await _placed(keys, one, sending)
            if len(keys) < batch or ctx.stopping:
                break
    finally:
        # every message sent, or failed, before the claim of those not begun is let go
        outcomes = await asyncio.gather(*sending, return_exceptions=True)
        handed_back = [i for i in claimed if i not in begun]
        if handed_back:
            now = ctx.now()
            await ctx.db.run_write(
                lambda s: s.execute(RELEASE, {"ids": handed_back, "worker": worker, "now": now})
            )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return len(claimed) - len(handed_back)


async def _placed(
    keys: list[Key],
    one: Callable[[Key, Callable[[], None]], Coroutine[Any, Any, None]],
    sending: list[asyncio.Task[None]],
) -> None:
    """Start a task for each message of a claim; returns once each has its place among
    those in flight (or has ended)."""
    left = len(keys)
    all_placed = asyncio.get_running_loop().create_future()

    def placed() -> None:
        nonlocal left
        left -= 1
        if left == 0 and not all_placed.done():
            all_placed.set_result(None)

    sending += [asyncio.create_task(one(key, placed)) for key in keys]
    await all_placed


Unit = tuple[Key, Callable[[Session], Any], "asyncio.Future[Any]"]


class _Together:
    """Units of work (a message's begin, or its outcome) that arrive while one transaction
    of them is being committed wait and go together in the next: under load the messages
    in flight take a few transactions instead of one each (on PostgreSQL each is a BEGIN, a
    COMMIT and a trip through the async bridge). A transaction runs its units in the order
    of their keys, the order every worker's transactions lock the subscription credits in.
    Each caller returns once its own unit has committed, exactly as from `run_write`; if
    the transaction fails, each unit of it is run again alone, so one unit's error is its
    own."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._waiting: list[Unit] = []
        self._committing = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only a weak one

    async def __call__(self, work: Callable[[Session], T], key: Key) -> T:
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, work, done))
        if not self._committing:
            self._committing = True
            self._task = asyncio.get_running_loop().create_task(self._commit())
        return await done

    async def _commit(self) -> None:
        units: list[Unit] = []

        def all_of(session: Session) -> list[Any]:
            return [work(session) for _, work, _ in units]

        try:
            while self._waiting:
                units, self._waiting = sorted(self._waiting, key=lambda unit: unit[0]), []
                try:
                    results = await self._ctx.db.run_write(all_of)
                except Exception as exc:
                    log.warning(
                        "delivery's writes taken one by one",
                        extra={"units": len(units), "error": type(exc).__name__},
                    )
                    for _, work, done in units:  # one by one: each its own outcome
                        try:
                            result = await self._ctx.db.run_write(work)
                        except Exception as exc:
                            _resolve(done, exc=exc)
                        else:
                            _resolve(done, result)
                else:
                    for (_, _, done), result in zip(units, results, strict=True):
                        _resolve(done, result)
        finally:
            self._committing = False
            # (cancelled midway: nothing is left waiting forever)
            for _, _, done in [*units, *self._waiting]:
                _resolve(done, exc=asyncio.CancelledError())
            self._waiting = []


def _resolve(
    done: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None
) -> None:
    if done.done():
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(result)


Write = Callable[[Callable[[Session], Any], Key], Awaitable[Any]]


async def _send(ctx: Context, worker: str, out: Outgoing, write: Write) -> None:
    page = ctx.settings.wechat.order_page + (f"?id={out.order_id}" if out.order_id else "")
    state = ctx.settings.wechat.miniprogram_state
    dev = ctx.settings.wechat.mode == "dev"
    try:
        await ctx.wechat.send_subscription(out.openid, out.template_id, page, out.fields, state)
    except WeChatNoAnswer:
        await _settle(ctx, worker, out, "uncertain", "微信无应答,可能已送达,不再重发", write=write)
    except WeChatError as exc:
        if exc.errcode == UNSUBSCRIBED:  # final: the person has no subscription left
            error = f"{exc.errcode} {exc.errmsg}"
            await _settle(ctx, worker, out, "unsubscribed", error, zero=True, write=write)
        elif exc.errcode in TRANSIENT_CODES:
            await _retry(ctx, worker, out, f"{exc.errcode} {exc.errmsg}", write)
        else:
            error = f"{exc.errcode} {exc.errmsg}"
            await _settle(ctx, worker, out, "failed", error, refund=True, write=write)
    except (errors.WeChatUnavailable, errors.WeChatFailed) as exc:
        await _retry(ctx, worker, out, exc.code, write)
    else:
        await _settle(ctx, worker, out, "logged" if dev else "sent", None, write=write)


async def _settle(
    ctx: Context,
    worker: str,
    out: Outgoing,
    status: str,
    error: str | None,
    *,
    refund: bool = False,
    zero: bool = False,
    write: Write,
) -> None:
    def work(session: Session) -> None:
        now = ctx.now()
        sent = status in ("sent", "logged")
        _finish(
            session,
            out.id,
            worker,
            wechat_status=status,
            attempts=out.attempts + 1,
            sent_at=now if sent else None,
            last_error=error[:200] if error else None,
            next_attempt_at=None,
        )
        key = {"account": out.recipient_id, "template": out.template_id, "now": now}
        if refund:
            REFUND.rowcount(session.connection(), key)
        if zero:
            ZERO.rowcount(session.connection(), key)

    await write(work, out.key)


async def _retry(ctx: Context, worker: str, out: Outgoing, error: str, write: Write) -> None:
    """WeChat said no for now (or could not be reached): the subscription is given back and
    the message waits, longer each time, up to the attempts allowed."""
    attempts = out.attempts + 1
    if attempts >= ctx.settings.scheduler.delivery_max_attempts:
        error = f"多次重试失败: {error}"
        await _settle(ctx, worker, out, "failed", error, refund=True, write=write)
        return

    def work(session: Session) -> None:
        now = ctx.now()
        _finish(
            session,
            out.id,
            worker,
            wechat_status="pending",
            attempts=attempts,
            send_started_at=None,
            next_attempt_at=now + backoff(attempts),
            last_error=error[:200],
        )
        key = {"account": out.recipient_id, "template": out.template_id, "now": now}
        REFUND.rowcount(session.connection(), key)

    log.info("wechat send will be retried", extra={"notification": out.id, "error": error})
    await write(work, out.key)


def backoff(attempts: int) -> timedelta:
    """30 s, 2 min, 8 min, 32 min, then hourly."""
    return min(timedelta(seconds=30 * 4 ** (attempts - 1)), timedelta(hours=1))


# --- template values within WeChat's limits --------------------------------------------

LIMITS = {
    "thing": 20,
    "character_string": 32,
    "phrase": 5,
    "name": 10,
    "phone_number": 17,
    "number": 32,
    "letter": 32,
    "car_number": 8,
    "amount": 16,
}


def template_fields(mapping: dict[str, str], data: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """{"thing1": {"value": ...}} from the message's values, each cut to its field's rule:
    a long value is shortened, never a reason for the send to fail."""
    return {
        field: {"value": field_value(field, data.get(source), ctx)}
        for field, source in mapping.items()
    }


def field_value(field: str, value: Any, ctx: Context) -> str:
    kind = field.rstrip("0123456789")
    text = "" if value is None else str(value)
    if kind in ("time", "date"):
        try:
            moment = datetime.fromisoformat(text).astimezone(ctx.settings.zone)
        except ValueError:
            return text[:20]
        return f"{moment:%Y-%m-%d %H:%M}" if kind == "time" else f"{moment:%Y-%m-%d}"
    if kind == "character_string":
        text = "".join(ch for ch in text if ch.isascii() and ch.isprintable())
    elif kind == "phone_number":
        text = "".join(ch for ch in text if ch.isdigit() or ch in "+-")
    elif kind == "number":
        text = "".join(ch for ch in text if ch.isdigit() or ch == ".")
    limit = LIMITS.get(kind, 20)
    if len(text) > limit:
        text = text[: limit - 1] + "…" if kind in ("thing",) else text[:limit]
    return text
