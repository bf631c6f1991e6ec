"""Staff at scale: an admin imports the district's staff from an xlsx sheet, and hands out
the one-time binding codes of the people it created.

The first sheet, a header row, then one row per person. Columns, by their headers:
- 姓名 (`name`): 2 to 20 characters;
- 角色 (`role`): 代办员, 调度员 or 管理员 (or agent, dispatcher, admin);
- 岗位 (`post`): A or B (A岗, B岗), agents only; may be empty;
- 区划代码 (`regionCode`): the 12-digit code of where the person is posted: a village station
  or a town centre for an agent, a town for a dispatcher, the district for an admin;
- 值班电话 (`workPhone`): the published duty phone (挂牌上岗);
- 工号 (`staffNumber`): the county's own staff number, if it has them;
- 服务时间 (`serviceHours`): optional, e.g. 周一至周五 8:30-17:00.

A person already in the district is found by staff number, else by work phone, and updated
(name, post, where they are posted, phone, hours): re-importing a corrected sheet never
duplicates anyone. Every problem of the sheet is found before anything is written and listed
with its row; a sheet with problems changes nothing. An import does not move an agent who
still has open orders (hand them over first), nor the only agent on duty of a station or a
centre (post someone there first); a disabled account stays disabled.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

import msgspec
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit, errors
from app.accounts import outputs
from app.accounts.staff import POSTED_AT, STAFF_LEVELS, new_binding
from app.context import Context
from app.kinds import Post
from app.models import Account, Order, Region
from app.orders.assignment import takes_orders
from app.orders.states import OPEN
from app.regions.division_codes import Problem
from app.regions.service import code_problem, get_region, within
from app.security import identity
from app.security.tokens import Principal
from app.text import cell_text, header_positions, sheet_rows, text_problem

COLUMNS = {
    "name": ("姓名", "name"),
    "role": ("角色", "role"),
    "post": ("岗位", "post"),
    "region_code": ("区划代码", "regionCode"),
    "work_phone": ("值班电话", "workPhone"),
    "staff_number": ("工号", "staffNumber"),
    "service_hours": ("服务时间", "serviceHours"),
}
REQUIRED = ("name", "role", "region_code")
FIELD_NAMES = {  # how a problem names its field: the API's names
    "name": "name",
    "role": "role",
    "post": "post",
    "region_code": "regionCode",
    "work_phone": "workPhone",
    "staff_number": "staffNumber",
    "service_hours": "serviceHours",
}
ROLES = {"代办员": "agent", "调度员": "dispatcher", "管理员": "admin"} | {
    role: role for role in ("agent", "dispatcher", "admin")
}
POSTS: dict[str, Post] = {"A": "A", "B": "B", "A岗": "A", "B岗": "B"}
MAX_ROWS = 5000


class StaffFileInvalid(errors.FileProblems[Problem]):
    """A staff sheet's problems; nothing of it is imported."""


@dataclass(frozen=True)
class StaffRow:
    row: int
    name: str
    role: str
    post: Post | None
    region_code: str
    work_phone: str | None
    staff_number: str | None
    service_hours: str | None


class ImportedPerson(msgspec.Struct, rename="camel", kw_only=True):
    row: int
    staff: outputs.StaffView
    binding_code: str | None  # a new person's one-time code, shown once


class StaffImported(msgspec.Struct, rename="camel", kw_only=True):
    created: int
    updated: int
    unchanged: int
    people: list[ImportedPerson]  # every row, in the sheet's order


@dataclass(frozen=True)
class StaffSheet:
    """A sheet as read: the rows that passed the checks of their own, and the problems of
    the others (`import_staff` adds those that need the database and lists them all)."""

    rows: list[StaffRow]
    problems: list[Problem]


def read_staff_file(data: bytes) -> StaffSheet:
    """The sheet's rows, each checked on its own; raises StaffFileInvalid when the file
    itself cannot be read (not an xlsx, no header, too many rows)."""
    table = sheet_rows(data, MAX_ROWS, max_col=len(COLUMNS) * 3)
    if table is None:
        raise StaffFileInvalid([Problem(row=1, field="file", message="无法读取该 xlsx 文件")])
    if not table:
        raise StaffFileInvalid([Problem(row=1, field="file", message="文件是空的")])
    at = header_positions(table[0], COLUMNS)
    missing = [COLUMNS[key][0] for key in REQUIRED if at[key] is None]
    if missing:
        message = f"第一行应为表头, 缺少「{'」「'.join(missing)}」列"
        raise StaffFileInvalid([Problem(row=1, field="file", message=message)])
    if len(table) > MAX_ROWS + 1:
        message = f"行数太多 (最多 {MAX_ROWS} 行)"
        raise StaffFileInvalid([Problem(row=1, field="file", message=message)])
    rows, problems = [], []
    for number, cells in enumerate(table[1:], start=2):
        values = {
            key: cell_text(cells[i]) if i is not None and i < len(cells) else ""
            for key, i in at.items()
        }
        if not any(values.values()):
            continue  # a blank line
        found = _row_problems(values)
        problems += [Problem(row=number, field=FIELD_NAMES[f], message=m) for f, m in found]
        if not found:
            rows.append(
                StaffRow(
                    row=number,
                    name=values["name"],
                    role=ROLES[values["role"]],
                    post=POSTS.get(values["post"].upper()) if values["post"] else None,
                    region_code=values["region_code"],
                    work_phone=values["work_phone"] or None,
                    staff_number=values["staff_number"] or None,
                    service_hours=values["service_hours"] or None,
                )
            )
    duplicated = _duplicates(rows)
    problems += duplicated
    rows = [r for r in rows if r.row not in {p.row for p in duplicated}]
    return StaffSheet(rows=rows, problems=problems)


def _row_problems(values: dict[str, str]) -> list[tuple[str, str]]:
    problems = []
    for key, value in values.items():
        if problem := text_problem(value):
            problems.append((key, problem))
    if problems:
        return problems
    if not 2 <= len(values["name"]) <= 20:
        problems.append(("name", "姓名应为2到20个字"))
    role = ROLES.get(values["role"])
    if role is None:
        problems.append(("role", "角色应为代办员、调度员或管理员"))
    if values["post"] and (role != "agent" or values["post"].upper() not in POSTS):
        problems.append(("post", "岗位只能是 A 或 B, 且只有代办员有岗位"))
    if message := code_problem(values["region_code"]):
        problems.append(("region_code", message))
    if values["work_phone"] and not identity.is_phone(values["work_phone"]):
        problems.append(("work_phone", "请填写手机号码或带区号的座机号码"))
    if len(values["staff_number"]) > 20:
        problems.append(("staff_number", "工号不超过20个字符"))
    if len(values["service_hours"]) > 100:
        problems.append(("service_hours", "服务时间不超过100个字"))
    if not values["work_phone"] and not values["staff_number"]:
        problems.append(("work_phone", "请填写值班电话或工号 (再次导入时据此找到本人)"))
    return problems


def _duplicates(rows: list[StaffRow]) -> list[Problem]:
    """Two rows that would find the same person: the same staff number, or the same phone
    where neither gives a staff number."""
    problems: list[Problem] = []
    numbers: dict[str, int] = {}
    phones: dict[str, int] = {}
    for r in rows:
        if r.staff_number:
            if r.staff_number in numbers:
                message = f"工号与第 {numbers[r.staff_number]} 行重复"
                problems.append(Problem(row=r.row, field="staffNumber", message=message))
            numbers.setdefault(r.staff_number, r.row)
        elif r.work_phone:
            if r.work_phone in phones:
                message = f"值班电话与第 {phones[r.work_phone]} 行重复, 请填写工号区分"
                problems.append(Problem(row=r.row, field="workPhone", message=message))
            phones.setdefault(r.work_phone, r.row)
    return problems


def import_staff(
    session: Session, ctx: Context, admin: Principal, sheet: StaffSheet
) -> StaffImported:
    """Create or update everyone of the sheet, or nothing: raises StaffFileInvalid listing
    every problem of every row, those of the sheet and those against the data at once."""
    rows = sheet.rows
    district = get_region(session, admin.region_id or 0, level="district")
    regions = {r.code: r for r in session.scalars(select(Region).where(within(district.id)))}
    staff = session.scalars(
        select(Account).where(
            Account.role != "resident",
            Account.region_id.in_([r.id for r in regions.values()]),
        )
    ).all()
    by_number = {a.staff_number: a for a in staff if a.staff_number}
    by_phone: dict[str, list[Account]] = {}
    for a in staff:
        if a.work_phone:
            by_phone.setdefault(a.work_phone, []).append(a)
    taken_elsewhere = set(
        session.scalars(
            select(Account.staff_number).where(
                Account.staff_number.in_([r.staff_number for r in rows if r.staff_number]),
                Account.id.not_in([a.id for a in staff]),
            )
        )
    )
    open_orders = dict(
        session.execute(
            select(Order.agent_id, func.count())
            .where(Order.agent_id.in_([a.id for a in staff]), Order.status.in_(OPEN))
            .group_by(Order.agent_id)
        ).all()
    )

    today = ctx.today()
    on_duty = Counter(a.region_id for a in staff if takes_orders(a, today))
    problems: list[Problem] = list(sheet.problems)
    plan: list[tuple[StaffRow, Region, Account | None]] = []
    matched: dict[int, int] = {}  # account id -> the row that found it
    for r in rows:
        found = _row_against_data(r, regions, by_number, by_phone, taken_elsewhere, open_orders)
        if isinstance(found, Problem):
            problems.append(found)
            continue
        region, account = found
        if account is not None and account.id in matched:
            message = (
                f"与第 {matched[account.id]} 行找到的是同一人 ({account.name}), 请填写工号区分"
            )
            problems.append(Problem(row=r.row, field="staffNumber", message=message))
            continue
        if account is not None:
            matched[account.id] = r.row
        moving = account is not None and account.region_id != region.id
        if moving and account is not None and _last_on_duty(account, on_duty, today):
            post = next(p.name for p in regions.values() if p.id == account.region_id)
            message = f"{account.name}是{post}唯一在岗的代办员, 请先安排接替的人再调岗"
            problems.append(Problem(row=r.row, field="regionCode", message=message))
            continue
        plan.append((r, region, account))
    if problems:
        raise StaffFileInvalid(sorted(problems, key=lambda p: p.row))

    now = ctx.now()
    people, created, updated = [], 0, 0
    for r, region, account in plan:
        code = None
        if account is None:
            account = Account(role=r.role, on_duty=r.role == "agent")
            code = new_binding(account, ctx)
            session.add(account)
            created += 1
            action = "staff.create"
        elif _changes(account, r, region):
            updated += 1
            action = "staff.edit"
        else:
            action = ""
        account.name, account.region_id, account.post = r.name, region.id, r.post
        account.work_phone, account.service_hours = r.work_phone, r.service_hours
        account.staff_number = r.staff_number or account.staff_number
        session.flush()
        if action:
            detail = {"import": True, "row": r.row, "regionId": region.id, "post": r.post}
            audit.record(session, admin, action, f"account:{account.id}", now, detail)
        people.append(
            ImportedPerson(
                row=r.row, staff=outputs.staff_view(account, region, today), binding_code=code
            )
        )
    detail = {"created": created, "updated": updated, "rows": len(plan)}
    audit.record(session, admin, "staff.import", "file:xlsx", now, detail)
    return StaffImported(
        created=created,
        updated=updated,
        unchanged=len(plan) - created - updated,
        people=people,
    )


def _row_against_data(
    r: StaffRow,
    regions: dict[str, Region],
    by_number: dict[str, Account],
    by_phone: dict[str, list[Account]],
    taken_elsewhere: set[str | None],
    open_orders: dict[int | None, int],
) -> Problem | tuple[Region, Account | None]:
    region = regions.get(r.region_code)
    if region is None:
        return Problem(row=r.row, field="regionCode", message="本区没有该区划代码")
    if region.retired_at is not None:
        return Problem(row=r.row, field="regionCode", message=f"{region.name}已撤销")
    if region.level not in STAFF_LEVELS[r.role]:
        message = f"{outputs.ROLE_NAMES[r.role]}应归属于{POSTED_AT[r.role]}"
        return Problem(row=r.row, field="regionCode", message=message)
    if r.staff_number in taken_elsewhere:
        return Problem(row=r.row, field="staffNumber", message="该工号已是其他区的工作人员")
    account = by_number.get(r.staff_number or "")
    if account is None and r.work_phone:
        same_phone = [a for a in by_phone.get(r.work_phone, []) if a.staff_number is None]
        if len(same_phone) > 1:
            message = "该值班电话对应多名工作人员, 请填写工号区分"
            return Problem(row=r.row, field="workPhone", message=message)
        account = same_phone[0] if same_phone else None
    if account is None:
        return region, None
    if account.role != r.role:
        message = f"{account.name}已是{outputs.ROLE_NAMES[account.role]}, 角色不能由导入改变"
        return Problem(row=r.row, field="role", message=message)
    if account.region_id != region.id and open_orders.get(account.id):
        message = f"{account.name}还有 {open_orders[account.id]} 件在办, 请先移交再调岗"
        return Problem(row=r.row, field="regionCode", message=message)
    return region, account


def _last_on_duty(account: Account, on_duty: Counter[int | None], today: date) -> bool:
    """Whether the agent is the only one on duty (and bound) where they are posted."""
    return takes_orders(account, today) and on_duty[account.region_id] == 1


def _changes(account: Account, r: StaffRow, region: Region) -> bool:
    """Whether the row changes the person (a row without a staff number keeps theirs)."""
    now = (
        account.name,
        account.region_id,
        account.post,
        account.work_phone,
        account.service_hours,
        account.staff_number,
    )
    return now != (
        r.name,
        region.id,
        r.post,
        r.work_phone,
        r.service_hours,
        r.staff_number or account.staff_number,
    )


def codes_sheet(imported: StaffImported, zone: ZoneInfo) -> bytes:
    """The binding codes to hand out, one row per new person, as an xlsx workbook (times in
    the service's zone)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "绑定码"
    sheet.append(["行", "姓名", "角色", "岗位", "驻点", "值班电话", "工号", "绑定码", "有效期至"])
    for person in imported.people:
        if person.binding_code is None:
            continue
        s = person.staff
        until = s.binding_expires_at.astimezone(zone) if s.binding_expires_at else None
        sheet.append(
            [
                person.row,
                s.name,
                s.role_name,
                s.post or "",
                s.region.name if s.region else "",
                s.work_phone or "",
                s.staff_number or "",
                person.binding_code,
                until.strftime("%Y-%m-%d %H:%M") if until else "",
            ]
        )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
