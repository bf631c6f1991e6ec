"""The public progress page (进度查询) at /p/<token>: what the 受理单's QR code opens on any
phone, without WeChat and without a login (app/orders/progress_page.py has the rules).

A router of its own, mounted beside the console's and sharing only its template engine and
filters (it imports nothing of the console: tests/platform/test_architecture.py): no
session, no cookies, no CSRF token: the digits change nothing of the order, and the one form
that does, the rating (app/ratings/web.py), carries a ticket only a page past the digits
has. The digits are posted in a form, so they never sit in an address, and the answer is
the page itself. Every answer is never cached, carries its own content
security policy (no script at all; the one inline style allowed by its hash) and asks not
to be indexed.

Wrong digits are counted twice: on the order (its lock-out, in the database, shared by every
process), and per client address in the rate limits' store (in process, or Redis when
DAIBAN_LIMITS_REDIS_URL is set, as the API's limits), ADDRESS_STRIKES wrong answers per
ADDRESS_WINDOW whatever the link, so one address cannot try many slips it holds."""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import datetime
from typing import Any

from litestar import Request, Router, get, post
from litestar.params import FromPath
from litestar.response import Template
from litestar.stores.base import Store

from app import errors
from app.context import Context
from app.orders import progress_page
from app.orders.progress_page import PATH, Locked, Shown, Wrong
from app.ratings import web
from app.ratings.outputs import GRADE_NAMES
from app.ratings.service import RatingInput
from app.security import addresses

log = logging.getLogger("daiban.progress_page")

STORE = "progress_page"  # app/asgi.py registers the rate limits' store under this name too
ADDRESS_STRIKES = 20
ADDRESS_WINDOW = 15 * 60  # seconds
MAX_FIELD = 40  # a digits field longer than this is not read
MAX_TICKET = 64
MAX_COMMENT = 500
MAX_TAGS = 8
GRADES = {str(g): g for g in range(1, 6)}
CSS = (
    "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;"
    "margin:0;padding:16px;color:#1b1b1b;background:#f6f7f9;line-height:1.6;font-size:17px}"
    "main{max-width:36rem;margin:0 auto}h1{font-size:1.3rem;margin:.2rem 0 1rem}"
    "section{background:#fff;border-radius:8px;padding:12px 16px;margin-bottom:12px}"
    "dl{margin:0}dt{color:#666;font-size:.9rem}dd{margin:0 0 .6rem}"
    ".status{font-size:1.25rem;font-weight:600}.alert{color:#b42318}"
    "ol{padding-left:1.2rem;margin:0}li{margin-bottom:.5rem}time{color:#666;font-size:.9rem}"
    "label{display:block;margin-bottom:.4rem}"
    "input{font-size:1.4rem;width:6em;padding:6px;letter-spacing:.2em}"
    "button{font-size:1.1rem;padding:8px 20px;margin-left:8px}"
    "a{color:#0b57d0}.hint{color:#666;font-size:.9rem}"
    ".grades button{display:block;width:100%;margin:0 0 8px;text-align:left}"
    ".tags label{display:inline-block;margin:0 12px 8px 0}"
    "textarea{width:100%;font-size:1rem;box-sizing:border-box}"
)
POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()}'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": POLICY,
    "X-Robots-Tag": "noindex, nofollow",
}


def _page(status: int, **context: Any) -> Template:
    headers = dict(HEADERS)
    until = context.get("locked_until")
    if isinstance(until, datetime):
        headers["Retry-After"] = str(max(1, int((until - context["now"]).total_seconds())))
    elif status == 429:
        headers["Retry-After"] = str(ADDRESS_WINDOW)
    return Template(
        template_name="progress_page.html",
        context={
            "css": CSS,
            "view": None,
            "error": None,
            "offer": None,
            "rated": None,
            "chosen": None,
            "rating_error": None,
            **context,
        },
        status_code=status,
        headers=headers,
    )


def ctx_of(request: Request[Any, Any, Any]) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def client_address(request: Request[Any, Any, Any]) -> str:
    """The phone's address (X-Real-IP behind a trusted proxy), as the API counts it."""
    peer = request.client.host if request.client else ""
    of = addresses.client_address(ctx_of(request).settings)
    return of(peer, request.headers.get("x-real-ip", ""))


def _store(request: Request[Any, Any, Any]) -> Store:
    return request.app.stores.get(STORE)


async def _address_strikes(store: Store, key: str) -> int:
    found = await store.get(key)
    return int(found) if found else 0


async def _strike(store: Store, key: str) -> None:
    """One more wrong answer from this address, in a window that starts with the first."""
    strikes = await _address_strikes(store, key) + 1
    left = await store.expires_in(key) if strikes > 1 else None
    await store.set(key, str(strikes), expires_in=left or ADDRESS_WINDOW)


def _address_key(request: Request[Any, Any, Any]) -> str:
    return f"{STORE}:{client_address(request)}"


def _too_many(token: str) -> Template:
    return _page(429, token=token, error="尝试次数过多，请15分钟后再试。")


@get("/{token:str}", name="progress_page")
async def page(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    """The question: the last four digits. An address that names no order is 404."""
    ctx = ctx_of(request)
    if not await ctx.db.run_read(lambda s: progress_page.known(s, token)):
        return _page(404, missing=True)
    return _page(200, token=token)


@post("/{token:str}", name="progress_page_answer", status_code=200)
async def answer(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    """The digits typed: the page's content, or why not."""
    ctx, store, key = ctx_of(request), _store(request), _address_key(request)
    if await _address_strikes(store, key) >= ADDRESS_STRIKES:
        return _too_many(token)
    form = await request.form()
    typed = str(form.get("digits") or "")[:MAX_FIELD]

    def check(session: Any) -> tuple[Any, web.Offer | web.Rated | None]:
        result = progress_page.attempt(session, ctx, token, typed)
        if isinstance(result, Shown):
            return result, web.offer(session, ctx, token, result.order_id)
        return result, None

    try:
        result, offer = await ctx.db.run_write(check)
    except errors.NotFound:
        await _strike(store, key)
        return _page(404, missing=True)
    if isinstance(result, Shown):
        return _page(200, token=token, view=result.view, **_offered(offer))
    await _strike(store, key)
    if isinstance(result, Locked):
        log.info("progress page locked", extra={"until": result.until.isoformat()})
        return _page(
            429,
            token=token,
            locked_until=result.until,
            now=ctx.now(),
            error="输错次数过多，已暂时锁定，请稍后再试；如需帮助请联系代办员或便民服务站。",
        )
    assert isinstance(result, Wrong)
    return _page(
        403,
        token=token,
        error=f"输入的后四位与办件登记的身份证号或手机号不符，请核对后重试（还可尝试{result.left}次）。",
    )


def _offered(offer: web.Offer | web.Rated | None) -> dict[str, Any]:
    if isinstance(offer, web.Rated):
        return {"rated": offer}
    return {"offer": offer}


def _clean(text: str) -> str | None:
    """A comment as typed, or None when it holds a control character (a NUL, say)."""
    if any((ord(c) < 0x20 and c not in "\r\n\t") or c == "\x7f" for c in text):
        return None
    return text.strip()


async def _ticketed_page(
    request: Request[Any, Any, Any], token: str, ticket: str
) -> tuple[Any, web.Offer | web.Rated | None] | Template:
    """The page behind the rating form's ticket and what it offers, or the page that sends
    the resident back (a link that names no order, a ticket not this page's or expired),
    counted as a wrong answer of the address."""
    ctx = ctx_of(request)
    try:
        return await ctx.db.run_read(lambda s: web.checked_page(s, ctx, token, ticket))
    except errors.NotFound:
        await _strike(_store(request), _address_key(request))
        return _page(404, missing=True)
    except web.TicketExpired:
        await _strike(_store(request), _address_key(request))
        return _page(403, token=token, error="页面已过期，请重新输入后四位。")


@post("/{token:str}/rating", name="progress_page_rating", status_code=200)
async def rating(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    """The rating form: a grade first (no `confirm`), then its tags and a comment. A ticket
    that is not this page's, or has expired, sends the resident back to the digits."""
    ctx, store, key = ctx_of(request), _store(request), _address_key(request)
    if await _address_strikes(store, key) >= ADDRESS_STRIKES:
        return _too_many(token)
    form = await request.form()
    ticket = str(form.get("ticket") or "")[:MAX_TICKET]
    grade = GRADES.get(str(form.get("grade") or ""))
    page = await _ticketed_page(request, token, ticket)
    if isinstance(page, Template):
        return page
    view, offer = page
    if grade is None or not form.get("confirm"):
        shown: dict[str, Any] = {"token": token, "view": view, **_offered(offer)}
        if grade is None or not isinstance(offer, web.Offer):
            return _page(200, **shown)
        chosen = {"grade": grade, "name": GRADE_NAMES[grade], "tags": web.tags_for(grade)}
        return _page(200, **shown, chosen=chosen)
    tags = [str(t)[:20] for t in form.getall("tags", [])][:MAX_TAGS]
    comment = _clean(str(form.get("comment") or "")[:MAX_COMMENT])
    if comment is None:
        unread = "评价内容含有无法识别的字符，请重新填写。"
        return _page(422, token=token, view=view, **_offered(offer), rating_error=unread)
    data = RatingInput(grade=grade, tags=tags, comment=comment or None)
    status, said, thanks = 200, "", False
    try:
        order_id = await ctx.db.run_write(lambda s: web.rate(s, ctx, token, ticket, data))
        log.info("progress page rating", extra={"order_id": order_id})
        thanks = True
    except errors.DomainError as exc:
        problems = [p["message"] for p in exc.extra.get("errors", [])]
        status, said = exc.status, "；".join([exc.detail, *problems])
    # The page as it now stands: the rating on its timeline, or why it was not made.
    page = await _ticketed_page(request, token, ticket)
    if isinstance(page, Template):
        return page
    view, offer = page
    return _page(
        status, token=token, view=view, **_offered(offer), rating_error=said, thanks=thanks
    )


def progress_router() -> Router:
    return Router(path=PATH, route_handlers=[page, answer, rating], include_in_schema=False)
