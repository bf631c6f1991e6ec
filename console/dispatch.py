"""The dispatcher's pages: the board (调度台), the town's orders, one order with its moves.

Every page calls the same app services as the API's dispatcher routes, with the signed-in
dispatcher as the caller, so scope and rules are the API's: another town's order is "没有找到"
and an illegal move is refused with the transition table's own Chinese reason."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from app import errors
from app.accounts import staff
from app.accounts.console import ConsoleUser
from app.context import Context
from app.dispatch import board
from app.downloads import download_headers
from app.orders import lookup, moves, queries, slip
from app.uploads.prereviews import PrereviewView
from app.uploads.service import download_links
from console.forms import (
    FORM,
    AssignForm,
    Form,
    QueryId,
    ReasonForm,
    ReassignForm,
    optional_status,
)
from console.session import change_then, ctx_of

Dispatcher = NamedDependency[ConsoleUser]
PAGE = 30


async def board_page(request: Request[Any, Any, Any], user: ConsoleUser) -> Template:
    ctx = ctx_of(request)
    data = await ctx.db.run_read(lambda s: board.board(s, ctx, user.principal))
    return Template(template_name="board.html", context={"user": user, "board": data})


@get("/board/parts", name="console_board_parts")
async def board_parts(request: Request[Any, Any, Any], dispatcher: Dispatcher) -> Template:
    """The board's content alone, fetched every few seconds by the board page (htmx)."""
    ctx = ctx_of(request)
    data = await ctx.db.run_read(lambda s: board.board(s, ctx, dispatcher.principal))
    return Template(template_name="_board.html", context={"user": dispatcher, "board": data})


class PersonSearchForm(Form):
    by: Literal["name", "id_number", "phone"]
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    purpose: Annotated[str, msgspec.Meta(max_length=200)] = ""


class PurposeForm(Form):
    purpose: Annotated[str, msgspec.Meta(max_length=200)] = ""


def _order_context(
    session: Session, ctx: Context, user: ConsoleUser, order_id: int, purpose: str | None = None
) -> dict[str, Any]:
    detail = queries.order_detail(session, ctx, user.principal, order_id)
    resident = lookup.resident_of_order(session, ctx, user.principal, order_id, purpose)
    agents = [a for a in staff.town_agents(session, ctx, user.principal) if not a.disabled]
    photos: dict[int, str | None] = {}
    hints: dict[int, list[str]] = {}  # the photo checks' warnings, beside each photo
    reused: dict[int, str] = {}  # a copy from the resident's material wallet (材料夹)
    notes: dict[int, list[str]] = {}  # 智能预审 that found nothing, or has not read it yet
    for slot in detail.checklist:
        for upload_id in slot.upload_ids:
            try:
                links = download_links(session, ctx, user.principal, upload_id)
            except errors.DomainError:
                photos[upload_id] = None  # removed by retention, or not yet complete
                continue
            photos[upload_id] = links.thumbnail_url or links.url
            hints[upload_id] = [w.message for w in links.warnings]
            alerts, notes[upload_id] = _prereview_hints(links.prereview)
            hints[upload_id] += alerts
            if links.from_wallet is not None:
                origin = links.from_wallet
                by = origin.verified_by_name or "代办员"
                when = origin.verified_at.astimezone(ctx.settings.zone)
                reused[upload_id] = f"来自材料夹：{when:%Y年%m月%d日}由{by}核验"
    return {
        "user": user,
        "order": detail,
        "agents": agents,
        "photos": photos,
        "hints": hints,
        "reused": reused,
        "notes": notes,
        "resident": resident,
    }


def _prereview_hints(prereview: PrereviewView | None) -> tuple[list[str], list[str]]:
    """智能预审 beside the photo, in a word: its warnings for the order's resident, and its
    other notes (nothing found, still reading, 未预审 and why)."""
    if prereview is None:
        return [], []
    if prereview.status in ("queued", "reading"):
        return [], ["预审：正在识别"]
    if prereview.status == "read" and not prereview.findings:
        return [], ["预审：未发现问题"]
    alerts = [f"预审：{f.message}" for f in prereview.findings if f.severity == "warning"]
    notes = [f.message for f in prereview.findings if f.severity != "warning"]
    return alerts, notes


class OrderPages(Controller):
    path = "/orders"

    @get(name="console_orders")
    async def town_orders(
        self,
        request: Request[Any, Any, Any],
        dispatcher: Dispatcher,
        number: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        overdue: FromQuery[bool | None] = None,
        agent: QueryId = None,
        cursor: QueryId = None,
    ) -> Response[Any]:
        """The town's orders, flagged first then newest; a number goes straight to its order."""
        ctx = ctx_of(request)
        wanted = (number or "").strip()
        if wanted:
            found = []
            if len(wanted) <= 20 and wanted.isascii() and wanted.isalnum():
                found = await ctx.db.run_read(
                    lambda s: lookup.find_orders(
                        s, ctx, dispatcher.principal, by="number", value=wanted, purpose=None
                    )
                )
            if found:
                return Redirect(path=f"/console/orders/{found[0].id}", status_code=303)
        page = await ctx.db.run_read(
            lambda s: queries.list_orders(
                s,
                ctx,
                dispatcher.principal,
                status=optional_status(status),
                agent_id=agent,
                overdue=overdue,
                cursor=cursor,
                limit=PAGE,
            )
        )
        following = {"status": status or None, "overdue": overdue, "agent": agent}
        query = "&".join(f"{k}={str(v).lower()}" for k, v in following.items() if v is not None)
        return Template(
            template_name="orders.html",
            context={
                "next_url": f"/console/orders?{query}&cursor={page.next_cursor}".replace("?&", "?"),
                "user": dispatcher,
                "page": page,
                "number": wanted,
                "not_found": bool(wanted),
                "status": status,
                "overdue": overdue,
            },
        )

    @post("/search", name="console_person_search")
    async def search(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[PersonSearchForm, FORM],
        dispatcher: Dispatcher,
    ) -> Template:
        """By the person: a form sent by POST, so an ID number never sits in an address
        (nor in a proxy's log); audited with its purpose."""
        ctx = ctx_of(request)
        try:
            found = await ctx.db.run_write(
                lambda s: lookup.find_orders(
                    s,
                    ctx,
                    dispatcher.principal,
                    by=data.by,
                    value=data.value,
                    purpose=data.purpose,
                )
            )
        except errors.InvalidInput as exc:
            return Template(
                template_name="orders.html",
                context={"user": dispatcher, "page": None, "error": exc, "search": data},
                status_code=exc.status,
            )
        return Template(
            template_name="orders.html",
            context={"user": dispatcher, "page": None, "found": found, "search": data},
        )

    @post("/{order_id:int}/resident", name="console_order_resident")
    async def resident(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[int],
        data: Annotated[PurposeForm, FORM],
        dispatcher: Dispatcher,
    ) -> Template:
        """The order with its resident in full, for the purpose given (audited)."""
        ctx = ctx_of(request)
        try:
            context = await ctx.db.run_write(
                lambda s: _order_context(s, ctx, dispatcher, order_id, data.purpose)
            )
        except errors.InvalidInput as exc:
            context = await ctx.db.run_read(lambda s: _order_context(s, ctx, dispatcher, order_id))
            return Template(
                template_name="order.html",
                context={**context, "error": exc},
                status_code=exc.status,
            )
        return Template(template_name="order.html", context=context)

    @get("/{order_id:int}", name="console_order")
    async def order(
        self, request: Request[Any, Any, Any], order_id: FromPath[int], dispatcher: Dispatcher
    ) -> Template:
        ctx = ctx_of(request)
        context = await ctx.db.run_read(lambda s: _order_context(s, ctx, dispatcher, order_id))
        done = request.query_params.get("done")
        return Template(template_name="order.html", context={**context, "done": done})

    @get("/{order_id:int}/slip.pdf", name="console_slip")
    async def slip_pdf(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[int],
        dispatcher: Dispatcher,
        layout: FromQuery[str] = "a4",
    ) -> Response[bytes]:
        """The 受理单 (回执 once handed back) to print: the API's PDF, A4 or an 80 mm roll."""
        ctx = ctx_of(request)
        data, name = await slip.slip_pdf(
            ctx, dispatcher.principal, order_id, "receipt" if layout == "receipt" else "a4"
        )
        return Response(
            content=data,
            media_type=slip.PDF,
            headers=download_headers(name, inline=True),
        )

    @get("/{order_id:int}/uploads/{upload_id:int}", name="console_upload")
    async def upload(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[int],
        upload_id: FromPath[int],
        dispatcher: Dispatcher,
    ) -> Redirect:
        """A photo at full size: a fresh short-lived link each time it is opened."""
        del order_id
        ctx = ctx_of(request)
        links = await ctx.db.run_read(
            lambda s: download_links(s, ctx, dispatcher.principal, upload_id)
        )
        return Redirect(path=links.url, status_code=303)

    async def _move(
        self,
        request: Request[Any, Any, Any],
        user: ConsoleUser,
        order_id: int,
        done: str,
        work: Any,
    ) -> Response[Any]:
        """Make a move; then back to the order, or the order again with the reason the move
        was refused, in Chinese, at the status the API would answer."""
        ctx = ctx_of(request)

        async def again(exc: errors.DomainError) -> Response[Any]:
            context = await ctx.db.run_read(lambda s: _order_context(s, ctx, user, order_id))
            return Template(
                template_name="order.html",
                context={**context, "error": exc},
                status_code=exc.status,
            )

        return await change_then(request, work, f"/console/orders/{order_id}?done={done}", again)

    @post("/{order_id:int}/assign", name="console_assign")
    async def assign(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[int],
        data: Annotated[AssignForm, FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        ctx = ctx_of(request)
        move = moves.ActionInput(agent_id=data.agent_id)
        return await self._move(
            request,
            dispatcher,
            order_id,
            "assign",
            lambda s: moves.act(s, ctx, dispatcher.principal, order_id, "assign", move),
        )

    @post("/{order_id:int}/reassign", name="console_reassign")
    async def reassign(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[int],
        data: Annotated[ReassignForm, FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        ctx = ctx_of(request)
        return await self._move(
            request,
            dispatcher,
            order_id,
            "reassign",
            lambda s: moves.reassign_order(
                s, ctx, dispatcher.principal, order_id, data.agent_id, data.reason
            ),
        )

    @post("/{order_id:int}/terminate", name="console_terminate")
    async def terminate(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[int],
        data: Annotated[ReasonForm, FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        ctx = ctx_of(request)
        move = moves.ActionInput(reason=data.reason)
        return await self._move(
            request,
            dispatcher,
            order_id,
            "terminate",
            lambda s: moves.act(s, ctx, dispatcher.principal, order_id, "terminate", move),
        )
