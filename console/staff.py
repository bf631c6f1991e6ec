"""The district admin's staff pages: everyone by role, a new person with a binding code
shown once, the staff sheet imported whole, edits, card photos, disabling and re-binding.

The same app services as the API's admin routes, with the signed-in admin as the caller."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import errors
from app.accounts import staff
from app.accounts.console import ConsoleUser
from app.accounts.staff_import import (
    StaffFileInvalid,
    codes_sheet,
    import_staff,
    read_staff_file,
)
from app.downloads import download_headers
from app.kinds import Post, StaffRole
from app.models import Upload
from app.regions.service import district_regions
from app.uploads.service import STAFF_PHOTO, complete_upload, create_upload
from console.forms import FILE_FORM, FORM, FileForm, Form, OptionalText
from console.session import ctx_of

Admin = NamedDependency[ConsoleUser]
ROLE_NAMES = {"agent": "代办员", "dispatcher": "调度员", "admin": "管理员"}
IMPORT_MAX_BYTES = 5 * 1024 * 1024
PHOTO_MAX_BYTES = 11 * 1024 * 1024  # a photo's limit (DAIBAN_STORAGE_MAX_UPLOAD_BYTES) and the form
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class StaffForm(Form):
    role: StaffRole
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    region_id: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    work_phone: OptionalText = ""
    service_hours: OptionalText = ""
    post: Literal["", "A", "B"] = ""


class StaffEditForm(Form):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    work_phone: OptionalText = ""
    service_hours: OptionalText = ""
    post: Literal["", "A", "B"] = ""


class StaffSwitchForm(Form):
    disabled: bool


def _blank(value: str) -> str | None:
    return value.strip() or None


def _post(value: str) -> Post | None:
    return "A" if value == "A" else "B" if value == "B" else None


async def _staff_page(
    request: Request[Any, Any, Any],
    user: ConsoleUser,
    role: str | None,
    *,
    done: str | None = None,
    created: Any = None,
    error: errors.DomainError | None = None,
) -> Template:
    ctx = ctx_of(request)

    def read(session: Session) -> dict[str, Any]:
        return {
            "staff": staff.list_staff(session, ctx, user.principal, role),
            "regions": [
                r for r in district_regions(session, user.principal) if r.retired_at is None
            ],
        }

    found = await ctx.db.run_read(read)
    return Template(
        template_name="admin_staff.html",
        context={
            "user": user,
            "role": role,
            "roles": ROLE_NAMES,
            "done": done,
            "created": created,
            "error": error,
            **found,
        },
        status_code=error.status if error else 200,
    )


class StaffPages(Controller):
    path = "/admin"

    @get("/staff", name="console_admin_staff")
    async def staff_list(
        self,
        request: Request[Any, Any, Any],
        admin: Admin,
        role: FromQuery[StaffRole | None] = None,
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _staff_page(request, admin, role, done=done)

    async def _staff_write(
        self, request: Request[Any, Any, Any], user: ConsoleUser, work: Any, done: str | None
    ) -> Response[Any]:
        """A change of staff; a new binding code is shown once, on the answer itself."""
        try:
            result = await ctx_of(request).db.run_write(work)
        except errors.DomainError as exc:
            if exc.status in (401, 404):
                raise
            return await _staff_page(request, user, None, error=exc)
        if done is None:
            return await _staff_page(request, user, None, created=result)
        return Redirect(path=f"/console/admin/staff?done={done}", status_code=303)

    @post("/staff", name="console_admin_staff_create")
    async def create(
        self, request: Request[Any, Any, Any], data: Annotated[StaffForm, FORM], admin: Admin
    ) -> Response[Any]:
        ctx = ctx_of(request)
        new = staff.StaffInput(
            role=data.role,
            name=data.name.strip(),
            region_id=data.region_id,
            work_phone=_blank(data.work_phone),
            service_hours=_blank(data.service_hours),
            post=_post(data.post),
        )
        return await self._staff_write(
            request, admin, lambda s: staff.create_staff(s, ctx, admin.principal, new), None
        )

    @post("/staff/{staff_id:int}", name="console_admin_staff_edit")
    async def edit(
        self,
        request: Request[Any, Any, Any],
        staff_id: FromPath[int],
        data: Annotated[StaffEditForm, FORM],
        admin: Admin,
    ) -> Response[Any]:
        ctx = ctx_of(request)
        change = staff.StaffChange(
            name=data.name.strip(),
            work_phone=_blank(data.work_phone),
            service_hours=_blank(data.service_hours),
            post=_post(data.post),
        )
        return await self._staff_write(
            request,
            admin,
            lambda s: staff.update_staff(s, ctx, admin.principal, staff_id, change),
            "edit",
        )

    @post("/staff/{staff_id:int}/switch", name="console_admin_staff_switch")
    async def switch(
        self,
        request: Request[Any, Any, Any],
        staff_id: FromPath[int],
        data: Annotated[StaffSwitchForm, FORM],
        admin: Admin,
    ) -> Response[Any]:
        """停用 or 启用: a disabled account's logins and console sessions end at once."""
        ctx = ctx_of(request)
        change = staff.StaffChange(disabled=data.disabled)
        return await self._staff_write(
            request,
            admin,
            lambda s: staff.update_staff(s, ctx, admin.principal, staff_id, change),
            "disabled" if data.disabled else "enabled",
        )

    @post("/staff/{staff_id:int}/binding-code", name="console_admin_binding_code")
    async def binding_code(
        self, request: Request[Any, Any, Any], staff_id: FromPath[int], admin: Admin
    ) -> Response[Any]:
        ctx = ctx_of(request)
        return await self._staff_write(
            request,
            admin,
            lambda s: staff.reissue_binding_code(s, ctx, admin.principal, staff_id),
            None,
        )

    @post(
        "/staff/import",
        name="console_admin_staff_import",
        request_max_body_size=IMPORT_MAX_BYTES,
        status_code=200,
    )
    async def import_staff_sheet(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[FileForm, FILE_FORM],
        admin: Admin,
    ) -> Response[Any]:
        """The staff sheet (xlsx), all or nothing; the answer is the sheet of the new
        people's binding codes to print and hand out (shown this once)."""
        ctx = ctx_of(request)
        try:
            sheet = await anyio.to_thread.run_sync(read_staff_file, await data.file.read())
            imported = await ctx.db.run_write(
                lambda s: import_staff(s, ctx, admin.principal, sheet)
            )
        except StaffFileInvalid as exc:
            problems = errors.InvalidInput(
                f"文件有 {len(exc.problems)} 处问题，未导入任何内容",
                errors=[{"field": f"第{p.row}行", "message": p.message} for p in exc.problems],
            )
            return await _staff_page(request, admin, None, error=problems)
        return Response(
            codes_sheet(imported, ctx.settings.zone),
            media_type=XLSX,
            headers=download_headers(f"绑定码_新增{imported.created}人.xlsx"),
        )

    @post(
        "/staff/{staff_id:int}/photo",
        name="console_admin_staff_photo",
        request_max_body_size=PHOTO_MAX_BYTES,
        status_code=200,
    )
    async def photo(
        self,
        request: Request[Any, Any, Any],
        staff_id: FromPath[int],
        data: Annotated[FileForm, FILE_FORM],
        admin: Admin,
    ) -> Response[Any]:
        """The card photo (挂牌上岗), through the uploads' own steps: a form for the file,
        the file stored as the phone would have posted it, checked on completion (a real
        image, EXIF removed, a thumbnail), then set on the staff member."""
        ctx, principal = ctx_of(request), admin.principal
        body = await data.file.read()
        kind = data.file.content_type or "application/octet-stream"
        try:
            ticket = await ctx.db.run_write(
                lambda s: create_upload(
                    s, ctx, principal, purpose=STAFF_PHOTO, content_type=kind, size=len(body)
                )
            )
            key = await ctx.db.run_read(
                lambda s: s.scalar(select(Upload.incoming_key).where(Upload.id == ticket.id))
            )
            if key is None:  # taken away meanwhile (cannot be: the form is this request's)
                raise errors.UploadNotReceived()
            await ctx.store.write(key, body, kind)
            await complete_upload(ctx, principal, ticket.id)
            await staff.set_staff_photo(ctx, principal, staff_id, ticket.id)
        except errors.DomainError as exc:
            if exc.status in (401, 404):
                raise
            return await _staff_page(request, admin, None, error=exc)
        return Redirect(path="/console/admin/staff?done=photo", status_code=303)

    @post("/staff/{staff_id:int}/photo/remove", name="console_admin_staff_photo_remove")
    async def remove_photo(
        self, request: Request[Any, Any, Any], staff_id: FromPath[int], admin: Admin
    ) -> Response[Any]:
        await staff.remove_staff_photo(ctx_of(request), admin.principal, staff_id)
        return Redirect(path="/console/admin/staff?done=photo_removed", status_code=303)
