"""The district admin's pages: the district's readiness, appeals to decide, the calendar,
the audit log and the scheduled jobs' runs (staff: console/staff.py).

The same app services as the API's admin routes, with the signed-in admin as the caller."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from app import audit, errors
from app.accounts.console import ConsoleUser
from app.district.readiness import readiness
from app.job_runs import jobs_view
from app.orders.calendar import OverrideDay, calendar_year, enter_calendar_year
from app.ratings import service as ratings
from console.cases import NAMES
from console.forms import FORM, Form, Paragraph, QueryId
from console.session import change_then, ctx_of

Admin = NamedDependency[ConsoleUser]
AUDIT_PAGE = 50
# What each action of the audit log is, as an admin reads it (the code stays beside it).
ACTION_NAMES = {
    "pii.read": "查看个人信息",
    "pii.search": "按群众查找办件",
    "prereview.read": "查看证件预审识别结果",
    "orders.export": "导出办件清单（脱敏）",
    "orders.export_unmasked": "导出办件清单（未脱敏）",
    "ledger.correct": "更正月度台账",
    "wallet.keep": "群众将证件放入材料夹",
    "wallet.use": "群众使用材料夹中的证件",
    "wallet.remove": "群众删除材料夹中的证件",
    "console.sign_in": "登录工作台",
    "account.close": "注销账号",
    "staff.create": "新增工作人员",
    "staff.edit": "修改工作人员",
    "staff.import": "导入人员表",
    "staff.binding_code": "生成绑定码",
    "staff.first_admin": "设立首位管理员",
    "staff.photo": "设置公示照片",
    "staff.photo_removed": "撤下公示照片",
    "catalogue.create": "新建事项",
    "catalogue.edit": "修改事项",
    "catalogue.retire": "停用事项",
    "catalogue.restore": "恢复事项",
    "catalogue.import": "导入事项清单",
    "catalogue.enablement": "开通或关闭事项",
    "calendar.year": "录入节假日安排",
    "dispatch.duty": "设置在岗状态",
    "dispatch.hand_over": "移交在办件",
    "dispatch.rule": "修改派单方式",
    "region.add": "新增乡镇或村",
    "region.rename": "乡镇或村改名",
    "region.retire": "撤销乡镇或村",
    "region.restore": "恢复乡镇或村",
    "regions.load": "导入区划",
    "keys.rotate": "更换加密密钥",
}


class DecisionForm(Form):
    upheld: bool
    note: Paragraph


class CalendarForm(Form):
    # One day a line: 2027-01-01 休 元旦 / 2027-02-07 班 春节调休
    days: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    complete: bool = False


# The scheduled jobs (jobs/scheduler.py) and the roles of the audit log's actors, in Chinese.
JOB_NAMES = {
    "deliver": "发送微信消息",
    "reminders": "到期提醒与催办",
    "comment_checks": "评价内容审核",
    "raw_uploads": "清除原始上传文件",
    "prereview": "证件预审",
    "ledgers": "生成月度台账",
    "clean_up": "日常清理",
    "backup": "备份",
    "retention": "个人信息到期删除",
}
ACTOR_ROLES = {"system": "系统", "admin": "管理员", "dispatcher": "调度员", "agent": "代办员"}


async def home_page(request: Request[Any, Any, Any], user: ConsoleUser) -> Template:
    ctx = ctx_of(request)
    found = await ctx.db.run_long_read(lambda s: readiness(s, ctx, user.principal))
    return Template(template_name="admin_home.html", context={"user": user, "readiness": found})


class AdminPages(Controller):
    path = "/admin"

    @get("/appeals", name="console_admin_appeals")
    async def appeals(
        self, request: Request[Any, Any, Any], admin: Admin, done: FromQuery[str | None] = None
    ) -> Template:
        ctx = ctx_of(request)
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
        ctx = ctx_of(request)

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
        ctx = ctx_of(request)
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
                "actions": ACTION_NAMES,
                "roles": ACTOR_ROLES,
                "actor": actor,
                "page_size": AUDIT_PAGE,
            },
        )

    @get("/jobs", name="console_admin_jobs")
    async def jobs(self, request: Request[Any, Any, Any], admin: Admin) -> Template:
        ctx = ctx_of(request)
        found = await ctx.db.run_read(lambda s: jobs_view(s, ctx.now()))
        return Template(
            template_name="admin_jobs.html",
            context={"user": admin, "jobs": found, "names": JOB_NAMES},
        )

    @get("/calendar", name="console_admin_calendar_now")
    async def calendar_now(self, request: Request[Any, Any, Any], admin: Admin) -> Redirect:
        del admin
        return Redirect(path=f"/console/admin/calendar/{ctx_of(request).today().year + 1}")

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
        ctx = ctx_of(request)
        return await change_then(
            request,
            lambda s: enter_calendar_year(
                s, ctx, admin.principal, year, calendar_lines(data.days), data.complete
            ),
            f"/console/admin/calendar/{year}?done=enter",
            lambda exc: _calendar_page(request, admin, year, None, exc, data.days),
        )


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
    ctx = ctx_of(request)
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
