"""The district admin's pages: the district's readiness, staff and their binding codes,
appeals to decide, the calendar, the audit log and the scheduled jobs' runs.

The same app services as the API's admin routes, with the signed-in admin as the caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit, errors
from app.accounts import staff
from app.accounts.console import ConsoleUser
from app.accounts.staff_import import (
    StaffFileInvalid,
    codes_sheet,
    import_staff,
    read_staff_file,
)
from app.context import Context
from app.district.readiness import readiness
from app.job_runs import jobs_view
from app.kinds import Post, StaffRole
from app.models import Upload
from app.orders.calendar import OverrideDay, calendar_year, enter_calendar_year
from app.ratings import service as ratings
from app.regions.service import district_regions
from app.uploads.service import STAFF_PHOTO, complete_upload, create_upload
from console.cases import NAMES
from console.forms import FORM, Form, OptionalText, Paragraph, QueryId
from console.session import change_then

Admin = NamedDependency[ConsoleUser]
ROLE_NAMES = {"agent": "代办员", "dispatcher": "调度员", "admin": "管理员"}
AUDIT_PAGE = 50
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


@dataclass
class SheetForm:
    file: UploadFile


class DecisionForm(Form):
    upheld: bool
    note: Paragraph


class CalendarForm(Form):
    # One day a line: 2027-01-01 休 元旦 / 2027-02-07 班 春节调休
    days: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    complete: bool = False


def _ctx(request: Request[Any, Any, Any]) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def _blank(value: str) -> str | None:
    return value.strip() or None


async def home_page(request: Request[Any, Any, Any], user: ConsoleUser) -> Template:
    ctx = _ctx(request)
    found = await ctx.db.run_long_read(lambda s: readiness(s, ctx, user.principal))
    return Template(template_name="admin_home.html", context={"user": user, "readiness": found})


async def _staff_page(
    request: Request[Any, Any, Any],
    user: ConsoleUser,
    role: str | None,
    *,
    done: str | None = None,
    created: Any = None,
    error: errors.DomainError | None = None,
) -> Template:
    ctx = _ctx(request)

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


class AdminPages(Controller):
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
            result = await _ctx(request).db.run_write(work)
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
        ctx = _ctx(request)
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
        ctx = _ctx(request)
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
        ctx = _ctx(request)
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
        ctx = _ctx(request)
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
        data: Annotated[SheetForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        admin: Admin,
    ) -> Response[Any]:
        """The staff sheet (xlsx), all or nothing; the answer is the sheet of the new
        people's binding codes to print and hand out (shown this once)."""
        ctx = _ctx(request)
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
            headers={
                "Content-Disposition": "attachment; filename*=UTF-8''"
                + quote(f"绑定码_新增{imported.created}人.xlsx"),
                "Cache-Control": "no-store",
            },
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
        data: Annotated[SheetForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        admin: Admin,
    ) -> Response[Any]:
        """The card photo (挂牌上岗), through the uploads' own steps: a form for the file,
        the file stored as the phone would have posted it, checked on completion (a real
        image, EXIF removed, a thumbnail), then set on the staff member."""
        ctx, principal = _ctx(request), admin.principal
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
        await staff.remove_staff_photo(_ctx(request), admin.principal, staff_id)
        return Redirect(path="/console/admin/staff?done=photo_removed", status_code=303)

    @get("/appeals", name="console_admin_appeals")
    async def appeals(
        self, request: Request[Any, Any, Any], admin: Admin, done: FromQuery[str | None] = None
    ) -> Template:
        ctx = _ctx(request)
        found = await ctx.db.run_read(lambda s: ratings.appeals(s, admin.principal, None))
        return Template(
            template_name="admin_appeals.html",
            context={"user": admin, "appeals": found, "done": done, **NAMES},
        )

    @post("/appeals/{appeal_id:int}/decide", name="console_admin_decide")
    async def decide(
        self,
        request: Request[Any, Any, Any],
        appeal_id: FromPath[int],
        data: Annotated[DecisionForm, FORM],
        admin: Admin,
    ) -> Response[Any]:
        ctx = _ctx(request)

        async def again(exc: errors.DomainError) -> Response[Any]:
            found = await ctx.db.run_read(lambda s: ratings.appeals(s, admin.principal, None))
            return Template(
                template_name="admin_appeals.html",
                context={"user": admin, "appeals": found, "error": exc, **NAMES},
                status_code=exc.status,
            )

        return await change_then(
            request,
            lambda s: ratings.decide(s, ctx, admin.principal, appeal_id, data.upheld, data.note),
            "/console/admin/appeals?done=decide",
            again,
        )

    @get("/audit", name="console_admin_audit")
    async def audit_log(
        self,
        request: Request[Any, Any, Any],
        admin: Admin,
        action: Annotated[str | None, QueryParameter(max_length=40)] = None,
        actor: QueryId = None,
        cursor: QueryId = None,
    ) -> Template:
        ctx = _ctx(request)
        found = await ctx.db.run_read(
            lambda s: audit.entries(
                s,
                admin.principal,
                action=action or None,
                actor_id=actor,
                cursor=cursor,
                limit=AUDIT_PAGE,
            )
        )
        return Template(
            template_name="admin_audit.html",
            context={
                "user": admin,
                "entries": found,
                "action": action or "",
                "actor": actor,
                "page_size": AUDIT_PAGE,
            },
        )

    @get("/jobs", name="console_admin_jobs")
    async def jobs(self, request: Request[Any, Any, Any], admin: Admin) -> Template:
        ctx = _ctx(request)
        found = await ctx.db.run_read(lambda s: jobs_view(s, ctx.now()))
        return Template(template_name="admin_jobs.html", context={"user": admin, "jobs": found})

    @get("/calendar", name="console_admin_calendar_now")
    async def calendar_now(self, request: Request[Any, Any, Any], admin: Admin) -> Redirect:
        del admin
        return Redirect(path=f"/console/admin/calendar/{_ctx(request).today().year + 1}")

    @get("/calendar/{year:int}", name="console_admin_calendar")
    async def calendar(
        self,
        request: Request[Any, Any, Any],
        year: FromPath[int],
        admin: Admin,
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _calendar_page(request, admin, year, done, None, None)

    @post("/calendar/{year:int}", name="console_admin_calendar_enter")
    async def enter_calendar(
        self,
        request: Request[Any, Any, Any],
        year: FromPath[int],
        data: Annotated[CalendarForm, FORM],
        admin: Admin,
    ) -> Response[Any]:
        ctx = _ctx(request)
        return await change_then(
            request,
            lambda s: enter_calendar_year(
                s, ctx, admin.principal, year, calendar_lines(data.days), data.complete
            ),
            f"/console/admin/calendar/{year}?done=enter",
            lambda exc: _calendar_page(request, admin, year, None, exc, data.days),
        )


def _post(value: str) -> Post | None:
    return "A" if value == "A" else "B" if value == "B" else None


def calendar_lines(text: str) -> list[OverrideDay]:
    """`2027-01-01 休 元旦` or `2027-02-07 班 春节调休`, one day a line (休 a holiday on a
    working day, 班 a working weekend day); anything else is named by its line."""
    days, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split(maxsplit=2)
        if not parts:
            continue
        try:
            day = date.fromisoformat(parts[0])
        except ValueError:
            problems.append({"field": f"第{number}行", "message": "日期应写成 2027-01-01"})
            continue
        kind = parts[1] if len(parts) > 1 else ""
        if kind not in ("休", "班"):
            problems.append({"field": f"第{number}行", "message": "日期后应写“休”或“班”"})
            continue
        days.append(OverrideDay(day=day, is_workday=kind == "班", note=_note(parts)))
    if problems:
        raise errors.InvalidInput(errors=problems)
    return days


def _note(parts: list[str]) -> str | None:
    return parts[2].strip()[:100] if len(parts) > 2 else None


async def _calendar_page(
    request: Request[Any, Any, Any],
    user: ConsoleUser,
    year: int,
    done: str | None,
    error: errors.DomainError | None,
    typed: str | None,
) -> Template:
    ctx = _ctx(request)
    view = await ctx.db.run_read(lambda s: calendar_year(s, ctx, year))
    lines = "\n".join(
        f"{d.day.isoformat()} {'班' if d.is_workday else '休'}{' ' + d.note if d.note else ''}"
        for d in view.overrides
    )
    return Template(
        template_name="admin_calendar.html",
        context={
            "user": user,
            "calendar": view,
            "lines": typed if typed is not None else lines,
            "done": done,
            "error": error,
        },
        status_code=error.status if error else 200,
    )
