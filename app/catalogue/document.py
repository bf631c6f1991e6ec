"""The catalogue as a document (YAML or xlsx): reading, checking every row at once, writing."""

from __future__ import annotations

import io
import re
from typing import Any

import msgspec
import yaml
from openpyxl import Workbook, load_workbook

LEVELS = ("village", "town", "district")
KINDS = ("immediate", "promised", "joint", "escalated")
MODES = ("full", "proxy", "consult")
FORMS = ("original", "copy")
ITEM_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,19}$")
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MATERIAL_CODE = re.compile(r"^[a-z0-9_]{1,40}$")
DEPARTMENT_CODE = re.compile(r"^[a-z0-9_]{1,30}$")


class MaterialSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    code: str
    name: str
    description: str = ""
    form: str = "original"
    count: int = 1
    required: bool = True
    photo_ok: bool = True
    sample: str | None = None


class FeeSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount_fen: int = 0
    basis: str | None = None


class ItemSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    code: str
    name: str
    department: str
    level: str
    kind: str
    mode: str
    conditions: str
    materials: list[MaterialSpec]
    steps: list[str]
    promised_days: int
    legal_days: int
    legal_basis: str
    phone: str
    aliases: list[str] = msgspec.field(default_factory=list)
    fee: FeeSpec = msgspec.field(default_factory=FeeSpec)
    in_person: bool = False
    enabled: list[str] = msgspec.field(default_factory=list)
    allow_accept_with_gaps: bool = False


class DepartmentSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    code: str
    name: str


class CatalogueDocument(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    version: int = 1
    departments: list[DepartmentSpec] = msgspec.field(default_factory=list)
    items: list[ItemSpec] = msgspec.field(default_factory=list)


class Problem(msgspec.Struct, rename="camel", kw_only=True):
    row: str  # "items[3] RS-0004", or "items!7" for a worksheet row
    field: str
    message: str


class DocumentInvalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


# --- reading ------------------------------------------------------------------------------


def read_document(data: bytes, filename: str) -> CatalogueDocument:
    """Parse and check; raises DocumentInvalid listing every problem found."""
    if filename.lower().endswith(".xlsx"):
        raw, problems, rows = _read_xlsx(data)
    else:
        raw, problems, rows = _read_yaml(data)
    document, good_rows = _convert(raw, problems, rows)
    problems += check_document(document, good_rows) if document else []
    if problems or document is None:
        raise DocumentInvalid(problems)
    return document


def _read_yaml(data: bytes) -> tuple[dict[str, Any], list[Problem], list[str]]:
    try:
        raw = yaml.load(data, Loader=SafeLoader)  # noqa: S506 - the safe loader, in C when built
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "file"
        return {}, [Problem(row=where, field="", message="YAML 格式错误")], []
    if not isinstance(raw, dict):
        return {}, [Problem(row="file", field="", message="文件内容应为含 items 的对象")], []
    items = raw.get("items") or []
    rows = [
        f"items[{i}] {it.get('code', '')}".strip() if isinstance(it, dict) else f"items[{i}]"
        for i, it in enumerate(items)
    ]
    return raw, [], rows


def _convert(
    raw: dict[str, Any], problems: list[Problem], rows: list[str]
) -> tuple[CatalogueDocument | None, list[str]]:
    """Check each item on its own, so one bad item does not hide the problems of the next.

    Returns the items that parsed and, beside them, the row label of each."""
    if not raw:
        return None, []
    good_items: list[ItemSpec] = []
    good_rows: list[str] = []
    for i, item in enumerate(raw.get("items") or []):
        row = rows[i] if i < len(rows) else f"items[{i}]"
        try:
            good_items.append(msgspec.convert(item, ItemSpec))
            good_rows.append(row)
        except msgspec.ValidationError as exc:
            problems.append(_problem_from(exc, row))
    try:
        shell = msgspec.convert({**raw, "items": []}, CatalogueDocument)
    except msgspec.ValidationError as exc:
        problems.append(_problem_from(exc, "file"))
        return None, []
    document = CatalogueDocument(
        version=shell.version, departments=shell.departments, items=good_items
    )
    return document, good_rows


def _problem_from(exc: msgspec.ValidationError, row: str) -> Problem:
    text = str(exc)
    message, _, path = text.partition(" - at `$")
    field = path.rstrip("`").lstrip(".") if path else ""
    if message.startswith("Object contains unknown field"):
        field = message.split("`")[1]
        message = "不认识的字段(列)"
    elif message.startswith("Object missing required field"):
        field = (field + "." if field else "") + message.split("`")[1]
        message = "缺少必填项"
    else:
        message = f"格式不正确: {message}"
    return Problem(row=row, field=field, message=message)


def check_document(document: CatalogueDocument, rows: list[str] | None = None) -> list[Problem]:
    problems: list[Problem] = []
    departments = {d.code for d in document.departments}
    for d in document.departments:
        if not DEPARTMENT_CODE.match(d.code):
            problems.append(
                Problem(
                    row=f"departments {d.code}",
                    field="code",
                    message="部门代码只能用小写字母、数字和下划线",
                )
            )
        if not d.name.strip():
            problems.append(
                Problem(row=f"departments {d.code}", field="name", message="部门名称不能为空")
            )
    seen: dict[str, str] = {}
    for i, item in enumerate(document.items):
        row = rows[i] if rows and i < len(rows) else f"items[{i}] {item.code}"
        if item.code in seen:
            problems.append(
                Problem(row=row, field="code", message=f"事项编码重复(与 {seen[item.code]} 相同)")
            )
        seen.setdefault(item.code, row)
        problems += [
            Problem(row=row, field=f, message=m) for f, m in check_item(item, departments or None)
        ]
    return problems


def check_item(item: ItemSpec, departments: set[str] | None) -> list[tuple[str, str]]:
    """Every rule of a guide, as (field, Chinese message) pairs; empty when the item is good."""
    out: list[tuple[str, str]] = []
    if not ITEM_CODE.match(item.code):
        out.append(("code", "事项编码只能用大写字母、数字和连字符,3到20位"))
    if not item.name.strip() or len(item.name) > 100:
        out.append(("name", "事项名称不能为空,且不超过100字"))
    if departments is not None and item.department not in departments:
        out.append(("department", f"未知部门 {item.department}"))
    if item.level not in LEVELS:
        out.append(("level", f"办理层级应为 {'/'.join(LEVELS)} 之一"))
    if item.kind not in KINDS:
        out.append(("kind", f"事项类型应为 {'/'.join(KINDS)} 之一"))
    if item.mode not in MODES:
        out.append(("mode", f"办理方式应为 {'/'.join(MODES)} 之一"))
    if item.promised_days < 0:
        out.append(("promised_days", "承诺时限不能为负数"))
    if item.legal_days < 0:
        out.append(("legal_days", "法定时限不能为负数"))
    elif item.legal_days < item.promised_days:
        out.append(("legal_days", "法定时限不能少于承诺时限"))
    if item.kind == "immediate" and item.promised_days != 0:
        out.append(("promised_days", "即办件的承诺时限应为0"))
    if item.mode == "consult" and not item.in_person:
        out.append(("in_person", "咨询服务事项须本人到场"))
    if item.in_person and item.mode == "proxy":
        out.append(("mode", "须本人到场的事项不能全程代理"))
    if item.fee.amount_fen < 0:
        out.append(("fee.amount_fen", "收费金额不能为负数"))
    if item.fee.amount_fen > 0 and not (item.fee.basis or "").strip():
        out.append(("fee.basis", "收费事项须写明收费依据"))
    if not item.phone.strip():
        out.append(("phone", "咨询电话不能为空"))
    if any(level not in ("town", "village") for level in item.enabled):
        out.append(("enabled", "开通层级只能是 town 或 village"))
    if not item.materials:
        out.append(("materials", "至少要有一项申请材料"))
    elif not any(m.required for m in item.materials):
        out.append(("materials", "至少要有一项必需材料"))
    codes: set[str] = set()
    for j, m in enumerate(item.materials):
        where = f"materials[{j}]"
        if not m.name.strip():
            out.append((f"{where}.name", "材料名称不能为空"))
        if not MATERIAL_CODE.match(m.code):
            out.append((f"{where}.code", "材料编码只能用小写字母、数字和下划线"))
        elif m.code in codes:
            out.append((f"{where}.code", f"材料编码 {m.code} 重复"))
        codes.add(m.code)
        if m.form not in FORMS:
            out.append((f"{where}.form", "材料形式应为 original(原件) 或 copy(复印件)"))
        if m.count < 1:
            out.append((f"{where}.count", "份数至少为1"))
    return out


# --- xlsx ---------------------------------------------------------------------------------

ITEM_COLUMNS = [
    "code",
    "name",
    "aliases",
    "department",
    "level",
    "kind",
    "mode",
    "conditions",
    "steps",
    "promised_days",
    "legal_days",
    "fee_fen",
    "fee_basis",
    "legal_basis",
    "in_person",
    "phone",
    "enabled",
    "allow_accept_with_gaps",
]
MATERIAL_COLUMNS = [
    "item_code",
    "code",
    "name",
    "description",
    "form",
    "count",
    "required",
    "photo_ok",
    "sample",
]
LIST_SEPARATOR = "|"
BOOL_COLUMNS = {"in_person", "allow_accept_with_gaps", "required", "photo_ok"}
INT_COLUMNS = {"promised_days", "legal_days", "fee_fen", "count"}


def _cell_out(value: Any) -> Any:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return LIST_SEPARATOR.join(value)
    return value


def write_xlsx(document: CatalogueDocument) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "items"
    sheet.append(ITEM_COLUMNS)
    materials = book.create_sheet("materials")
    materials.append(MATERIAL_COLUMNS)
    for item in document.items:
        values = msgspec.to_builtins(item)
        values["fee_fen"], values["fee_basis"] = item.fee.amount_fen, item.fee.basis
        sheet.append([_cell_out(values[c]) for c in ITEM_COLUMNS])
        for m in item.materials:
            row = {"item_code": item.code, **msgspec.to_builtins(m)}
            materials.append([_cell_out(row[c]) for c in MATERIAL_COLUMNS])
    departments = book.create_sheet("departments")
    departments.append(["code", "name"])
    for d in document.departments:
        departments.append([d.code, d.name])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell_in(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in BOOL_COLUMNS:
        return {"是": True, "否": False, "true": True, "false": False}.get(
            str(value).strip().lower() if not isinstance(value, bool) else str(value).lower(),
            value,
        )
    if column in INT_COLUMNS and isinstance(value, float) and value.is_integer():
        return int(value)
    if column in INT_COLUMNS and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if column in ("aliases", "steps", "enabled"):
        return [part for part in str(value).split(LIST_SEPARATOR) if part]
    return value


def _read_xlsx(data: bytes) -> tuple[dict[str, Any], list[Problem], list[str]]:
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        return {}, [Problem(row="file", field="", message="无法读取该 xlsx 文件")], []
    problems: list[Problem] = []
    sheets: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    expected = {
        "items": ITEM_COLUMNS,
        "materials": MATERIAL_COLUMNS,
        "departments": ["code", "name"],
    }
    for name, columns in expected.items():
        if name not in book.sheetnames:
            problems.append(Problem(row=name, field="", message=f"缺少工作表 {name}"))
            sheets[name] = []
            continue
        rows = list(book[name].iter_rows(values_only=True))
        header = [str(h).strip() if h is not None else "" for h in (rows[0] if rows else [])]
        for h in header:
            if h and h not in columns:
                problems.append(Problem(row=f"{name}!1", field=h, message="不认识的列"))
        sheets[name] = [
            (n, {h: _cell_in(h, v) for h, v in zip(header, r, strict=False) if h in columns})
            for n, r in enumerate(rows[1:], start=2)
            if any(v is not None for v in r)
        ]
    materials: dict[str, list[dict[str, Any]]] = {}
    for n, row in sheets["materials"]:
        item_code = row.pop("item_code", None)
        materials.setdefault(str(item_code), []).append(
            {k: v for k, v in row.items() if v is not None}
        )
        if not item_code:
            problems.append(
                Problem(row=f"materials!{n}", field="item_code", message="缺少事项编码")
            )
    items, rows_named = [], []
    for n, row in sheets["items"]:
        fee = {"amount_fen": row.pop("fee_fen", None) or 0, "basis": row.pop("fee_basis", None)}
        item = {k: v for k, v in row.items() if v is not None}
        item["fee"] = fee
        item["materials"] = materials.get(str(row.get("code")), [])
        items.append(item)
        rows_named.append(f"items!{n} {row.get('code') or ''}".strip())
    departments = [row for _, row in sheets["departments"]]
    return {"version": 1, "departments": departments, "items": items}, problems, rows_named


def dump_yaml(document: CatalogueDocument) -> bytes:
    return yaml.safe_dump(
        msgspec.to_builtins(document), allow_unicode=True, sort_keys=False, width=120
    ).encode()
