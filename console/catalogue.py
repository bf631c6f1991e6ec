"""The catalogue on the console: admins search, edit (a new guide version), retire, restore,
import and export items; admins and dispatchers switch items on and off for a town or a
village station. The changes are app/catalogue/administration.py's, audited there."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from app import errors
from app.accounts.console import ConsoleUser
from app.catalogue import administration, enablement, queries, service
from app.catalogue.document import DocumentInvalid, dump_yaml, encoded, read_document
from app.downloads import download_headers
from app.regions.service import managed_regions
from console.forms import FILE_FORM, FORM, FileForm, Form, QueryId
from console.session import change_then, ctx_of

User = NamedDependency[ConsoleUser]
Admin = NamedDependency[ConsoleUser]
IMPORT_MAX_BYTES = 20 * 1024 * 1024  # as the API's import
KINDS = {"immediate": "即办件", "promised": "承诺件", "joint": "联办件", "escalated": "上报件"}
PAGE = 50
Code = Annotated[str, msgspec.Meta(max_length=20, pattern=r"^[A-Za-z0-9-]+$")]


class ItemForm(Form):
    # The item in the import file's YAML format (one item, and its department).
    document: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]


class SwitchForm(Form):
    region_id: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    # Every item offered on the page, and those left ticked.
    shown: list[Code] | Code = msgspec.field(default_factory=list)
    item: list[Code] | Code = msgspec.field(default_factory=list)


def _as_list(value: list[str] | str) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _problems(exc: DocumentInvalid) -> errors.DomainError:
    """A file's (or a form's) problems as the error the pages show, each with its place."""
    return errors.InvalidInput(
        errors=[
            {"field": "文件", "message": f"{p.row} {p.field}：{p.message}"} for p in exc.problems
        ]
    )


async def _catalogue_page(
    request: Request[Any, Any, Any],
    user: ConsoleUser,
    q: str | None,
    cursor: str | None,
    *,
    done: str | None = None,
    error: errors.DomainError | None = None,
    imported: Any = None,
) -> Template:
    ctx = ctx_of(request)

    def read(session: Session) -> dict[str, Any]:
        return {
            "page": queries.search(
                session, q=q, village_id=None, department=None, kind=None, cursor=cursor, limit=PAGE
            ),
            "retired": service.retired_items(session),
        }

    found = await ctx.db.run_read(read)
    return Template(
        template_name="admin_catalogue.html",
        context={
            "user": user,
            "q": q or "",
            "kinds": KINDS,
            "done": done,
            "error": error,
            "imported": imported,
            **found,
        },
        status_code=error.status if error else 200,
    )


async def _item_page(
    request: Request[Any, Any, Any],
    user: ConsoleUser,
    code: str,
    *,
    done: str | None = None,
    error: errors.DomainError | None = None,
    typed: str | None = None,
) -> Template:
    ctx = ctx_of(request)

    def read(session: Session) -> dict[str, Any]:
        document = service.item_document(session, code)
        retired = any(i.code == code for i in service.retired_items(session))
        return {
            "document": dump_yaml(document).decode(),
            "guide": None if retired else queries.guide(session, code),
            "versions": service.versions(session, code),
            "retired": retired,
        }

    found = await ctx.db.run_read(read)
    if typed is not None:
        found["document"] = typed
    return Template(
        template_name="admin_item.html",
        context={"user": user, "code": code, "kinds": KINDS, "done": done, "error": error, **found},
        status_code=error.status if error else 200,
    )


class CataloguePages(Controller):
    path = "/admin/catalogue"

    @get(name="console_admin_catalogue")
    async def catalogue(
        self,
        request: Request[Any, Any, Any],
        admin: Admin,
        q: Annotated[str | None, QueryParameter(max_length=50)] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=100)] = None,
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _catalogue_page(request, admin, q, cursor, done=done)

    @get("/export", name="console_admin_catalogue_export")
    async def export(
        self,
        request: Request[Any, Any, Any],
        admin: Admin,
        format: FromQuery[Literal["xlsx", "yaml"]] = "xlsx",
    ) -> Response[bytes]:
        del admin
        document = await ctx_of(request).db.run_long_read(service.export_document)
        data, media_type = encoded(document, format)
        return Response(
            data,
            media_type=media_type,
            headers=download_headers(f"catalogue.{format}"),
        )

    @post("/import", name="console_admin_catalogue_import", request_max_body_size=IMPORT_MAX_BYTES)
    async def import_file(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[FileForm, FILE_FORM],
        admin: Admin,
    ) -> Template:
        """A YAML or xlsx file of the export's format, applied whole or not at all."""
        ctx = ctx_of(request)
        name = (data.file.filename or "").lower()
        file_format = "xlsx" if name.endswith(".xlsx") else "yaml"
        body = await data.file.read()
        try:
            document = await service.read_file(ctx.db, body, f"upload.{file_format}")
            result = await ctx.db.run_write(
                lambda s: administration.import_items(
                    s, ctx, admin.principal, document, file_format
                )
            )
        except DocumentInvalid as exc:
            return await _catalogue_page(request, admin, None, None, error=_problems(exc))
        except errors.DomainError as exc:
            return await _catalogue_page(request, admin, None, None, error=exc)
        return await _catalogue_page(request, admin, None, None, imported=result)

    @get("/items/{code:str}", name="console_admin_item")
    async def item(
        self,
        request: Request[Any, Any, Any],
        code: FromPath[str],
        admin: Admin,
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _item_page(request, admin, code, done=done)

    @post("/items/{code:str}", name="console_admin_item_edit")
    async def edit(
        self,
        request: Request[Any, Any, Any],
        code: FromPath[str],
        data: Annotated[ItemForm, FORM],
        admin: Admin,
    ) -> Response[Any]:
        """The item as YAML, checked as an imported file is; a changed guide is a new
        version (orders already submitted keep theirs)."""
        ctx = ctx_of(request)
        try:
            known = await ctx.db.run_read(service.known_to)
            document = read_document(data.document.encode(), "item.yaml", known)
            if len(document.items) != 1:
                raise errors.InvalidInput(errors=[{"field": "文件", "message": "应只有一个事项"}])
            spec = document.items[0]
            await ctx.db.run_write(
                lambda s: administration.edit_item(s, ctx, admin.principal, code, spec)
            )
        except DocumentInvalid as exc:
            return await _item_page(request, admin, code, error=_problems(exc), typed=data.document)
        except errors.DomainError as exc:
            if exc.status in (401, 404):
                raise
            return await _item_page(request, admin, code, error=exc, typed=data.document)
        return Redirect(path=f"/console/admin/catalogue/items/{code}?done=edit", status_code=303)

    @post("/items/{code:str}/retire", name="console_admin_item_retire")
    async def retire(
        self, request: Request[Any, Any, Any], code: FromPath[str], admin: Admin
    ) -> Response[Any]:
        ctx = ctx_of(request)
        await ctx.db.run_write(lambda s: administration.retire_item(s, ctx, admin.principal, code))
        return Redirect(path="/console/admin/catalogue?done=retire", status_code=303)

    @post("/items/{code:str}/restore", name="console_admin_item_restore")
    async def restore(
        self, request: Request[Any, Any, Any], code: FromPath[str], admin: Admin
    ) -> Response[Any]:
        ctx = ctx_of(request)
        return await change_then(
            request,
            lambda s: administration.restore_item(s, ctx, admin.principal, code),
            "/console/admin/catalogue?done=restore",
            lambda exc: _catalogue_page(request, admin, None, None, error=exc),
        )


async def _offer_page(
    request: Request[Any, Any, Any],
    user: ConsoleUser,
    region: int | None,
    *,
    done: str | None = None,
    error: errors.DomainError | None = None,
) -> Template:
    ctx = ctx_of(request)

    def read(session: Session) -> dict[str, Any]:
        regions = managed_regions(session, user.principal)
        chosen = region or (regions[0].id if regions else None)
        offered = enablement.region_items(session, user.principal, chosen) if chosen else None
        every = queries.active_items(session)
        return {"regions": regions, "chosen": chosen, "offered": offered, "items": every}

    found = await ctx.db.run_read(read)
    offered = found["offered"]
    return Template(
        template_name="offer.html",
        context={
            "user": user,
            "done": done,
            "error": error,
            "kinds": KINDS,
            "on": {i.code for i in offered.items} if offered else set(),
            **found,
        },
        status_code=error.status if error else 200,
    )


class OfferPages(Controller):
    """Which items a town centre or a village station offers (事项开通)."""

    path = "/offer"

    @get(name="console_offer")
    async def offer(
        self,
        request: Request[Any, Any, Any],
        user: User,
        region: QueryId = None,
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _offer_page(request, user, region, done=done)

    @post(name="console_offer_switch")
    async def switch(
        self, request: Request[Any, Any, Any], data: Annotated[SwitchForm, FORM], user: User
    ) -> Response[Any]:
        """The items ticked are switched on, those shown and left unticked off."""
        ctx = ctx_of(request)
        shown, ticked = set(_as_list(data.shown)), set(_as_list(data.item))

        def work(session: Session) -> None:
            now_on = {
                i.code
                for i in enablement.region_items(session, user.principal, data.region_id).items
            }
            switch_on = sorted((ticked & shown) - now_on)
            switch_off = sorted((shown - ticked) & now_on)
            for codes, on in ((switch_off, False), (switch_on, True)):
                if codes:
                    administration.switch_items(
                        session, ctx, user.principal, data.region_id, codes, on
                    )

        return await change_then(
            request,
            work,
            f"/console/offer?region={data.region_id}&done=1",
            lambda exc: _offer_page(request, user, data.region_id, error=exc),
        )
