"""A district's region tree from the national statistical division codes (统计用区划代码).

The file is what a county has: one row per region with its 12-digit code and its name, as
CSV (UTF-8, with or without a byte-order mark, or GB18030) or as xlsx (the first sheet).
The first row names the columns; the code's column is headed 统计用区划代码, 区划代码, 代码 or
`code`, the name's 名称 or `name`. Other columns (城乡分类代码, …) are read past.

The level follows from the code, PP CC DD TTT VVV:
- DD ≠ 00, TTTVVV = 000000: the district (区县), the root of the file;
- TTT ≠ 000, VVV = 000: a town or street (乡镇/街道), under its district;
- VVV ≠ 000: a village or community (村/社区), under its town.
Rows above the district (a province PP0000000000, a city PPCC00000000) are skipped, so a
slice of the published list can be used as it is. One district per file.

Every problem of the file is found before anything is written, and listed with its row.
Loading is idempotent: a region is known by its code, so a file loaded again renames what
changed its name, adds what is new and brings back a retired region it lists again. A
region of the district the file no longer lists is removed when nothing refers to it, and
retired otherwise (it has orders, staff, residents or records): never deleted with them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit, errors
from app.kinds import RegionLevel
from app.models import ItemEnablement, Region
from app.regions.service import (
    code_problem,
    level_of,
    name_problem,
    new_region,
    parent_code,
    retire,
)
from app.text import cell_text, header_positions, sheet_rows

CODE_HEADERS = ("统计用区划代码", "区划代码", "代码", "code")
NAME_HEADERS = ("名称", "name")
MAX_ROWS = 20_000  # a district has a few thousand at most


class Problem(msgspec.Struct, rename="camel", kw_only=True):
    row: int  # the row in the file, counting the header as 1
    field: str  # "code", "name", or "file"
    message: str


class RegionsInvalid(errors.FileProblems[Problem]):
    """A division-code file's problems; nothing of it is loaded."""


@dataclass(frozen=True)
class RegionRow:
    row: int
    code: str
    name: str
    level: RegionLevel
    parent_code: str | None


@dataclass
class RegionsLoaded:
    district: str  # its name
    added: int = 0
    renamed: int = 0
    unchanged: int = 0
    restored: int = 0  # retired, and listed again
    # "code name" of the district's regions the file no longer lists
    removed: list[str] = field(default_factory=list)  # nothing referred to them
    retired: list[str] = field(default_factory=list)  # in use: kept, out of service


def read_regions(data: bytes, filename: str) -> list[RegionRow]:
    """The file's regions, district first; raises RegionsInvalid listing every problem."""
    problems: list[Problem] = []
    table = sheet_rows(data, MAX_ROWS) if filename.lower().endswith(".xlsx") else _csv_rows(data)
    if table is None:
        raise RegionsInvalid([Problem(row=1, field="file", message="无法读取该 xlsx 文件")])
    if not table:
        raise RegionsInvalid([Problem(row=1, field="file", message="文件是空的")])
    at = header_positions(table[0], {"code": CODE_HEADERS, "name": NAME_HEADERS})
    code_at, name_at = at["code"], at["name"]
    if code_at is None or name_at is None:
        message = "第一行应为表头, 含「统计用区划代码」和「名称」两列"
        raise RegionsInvalid([Problem(row=1, field="file", message=message)])
    if len(table) > MAX_ROWS + 1:
        message = f"行数太多 (最多 {MAX_ROWS} 行)"
        raise RegionsInvalid([Problem(row=1, field="file", message=message)])
    rows: list[RegionRow] = []
    seen: dict[str, int] = {}
    for number, cells in enumerate(table[1:], start=2):
        code = cell_text(cells[code_at] if code_at < len(cells) else None)
        name = cell_text(cells[name_at] if name_at < len(cells) else None)
        if not code and not name:
            continue  # a blank line
        found = _row_problems(number, code, name, seen)
        problems += found
        level = level_of(code) if code_problem(code) is None else None
        if found or level is None:
            continue
        seen[code] = number
        rows.append(RegionRow(number, code, name, level, parent_code(code, level)))
    problems += _tree_problems(rows)
    if problems:
        raise RegionsInvalid(sorted(problems, key=lambda p: p.row))
    # In code order: the district first, each town followed by its villages (a parent's
    # code sorts before its children's), so parents are added before children.
    return sorted(rows, key=lambda r: r.code)


def load_regions(session: Session, rows: list[RegionRow], now: datetime) -> RegionsLoaded:
    """Load the file's regions under its district (see the module's docstring)."""
    district = rows[0]
    existing = {
        r.code: r
        for r in session.scalars(select(Region).where(Region.code.startswith(district.code[:6])))
    }
    loaded = RegionsLoaded(district=district.name)
    for r in rows:  # parents before children
        region = existing.get(r.code)
        if region is None:
            parent = existing[r.parent_code] if r.parent_code else None
            region = new_region(r.code, r.name, parent)
            session.add(region)
            session.flush()
            existing[r.code] = region
            loaded.added += 1
            continue
        restored, renamed = region.retired_at is not None, region.name != r.name
        region.retired_at, region.name = None, r.name
        loaded.restored += restored
        loaded.renamed += renamed
        loaded.unchanged += not (restored or renamed)
    session.flush()
    listed = {r.code for r in rows}
    in_use = []
    # Villages before their towns: a town goes only once its villages have.
    for code, region in sorted(existing.items(), reverse=True):
        if code in listed:
            continue
        if _remove(session, region.id):
            loaded.removed.append(f"{code} {region.name}")
        elif region.retired_at is None:
            in_use.append(region)
    loaded.retired = [f"{r.code} {r.name}" for r in retire(session, in_use, now)]
    loaded.removed.sort()
    detail = {
        "added": loaded.added,
        "renamed": loaded.renamed,
        "restored": loaded.restored,
        "removed": len(loaded.removed),
        "retired": len(loaded.retired),
    }
    audit.record(session, None, "regions.load", f"region:{existing[district.code].id}", now, detail)
    return loaded


def _remove(session: Session, region_id: int) -> bool:
    """Delete a region nothing refers to (its items switched on go with it); False, with
    nothing changed, when an order, an account or a record still refers to it."""
    try:
        with session.begin_nested():
            session.execute(delete(ItemEnablement).where(ItemEnablement.region_id == region_id))
            session.execute(
                delete(Region)
                .where(Region.id == region_id)
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:
        return False
    return True


def _row_problems(number: int, code: str, name: str, seen: dict[str, int]) -> list[Problem]:
    problems = []
    if message := code_problem(code):
        problems.append(Problem(row=number, field="code", message=message))
    elif code in seen:
        message = f"区划代码与第 {seen[code]} 行重复"
        problems.append(Problem(row=number, field="code", message=message))
    if message := name_problem(name):
        problems.append(Problem(row=number, field="name", message=message))
    return problems


def _tree_problems(rows: list[RegionRow]) -> list[Problem]:
    districts = [r for r in rows if r.level == "district"]
    if not districts:
        return [Problem(row=1, field="file", message="文件中没有区县一级 (代码后6位为0) 的行")]
    district = districts[0]
    prefix = district.code[:6]
    codes = {r.code for r in rows}
    return (
        [Problem(row=r.row, field="code", message="一个文件只能有一个区县") for r in districts[1:]]
        + [
            Problem(row=r.row, field="code", message=f"不属于 {district.name} ({prefix})")
            for r in rows
            if r.level != "district" and not r.code.startswith(prefix)
        ]
        + [
            Problem(row=r.row, field="code", message=f"上级 {r.parent_code} 不在文件中")
            for r in rows
            if r.parent_code and r.code.startswith(prefix) and r.parent_code not in codes
        ]
    )


def _csv_rows(data: bytes) -> list[list[Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030", errors="replace")
    return [row for row in csv.reader(io.StringIO(text))]
