"""The catalogue as a document (YAML or xlsx): reading, checking every row at once, writing."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

import msgspec
import yaml
from openpyxl import Workbook, load_workbook

from app import errors
from app.text import sheet_row, text_problem

LEVELS = ("village", "town", "district")
KINDS = ("immediate", "promised", "joint", "escalated")
MODES = ("full", "proxy", "consult")
FORMS = ("original", "copy")
ENABLE_LEVELS = ("town", "village")
LIST_SEPARATOR = "|"  # between the parts of a list in one spreadsheet cell
# What a co_departments cell may separate its department codes with (codes have none of them).
CODE_SEPARATORS = re.compile(r"[|,\uff0c\u3001\s]+")  # |, commas (also full width), 、, spaces
# 容缺受理: without the applicant's ID, their application and their entrustment there is no
# request to accept, so no guide may let these follow (the orders keep the same set as a last
# guard: app/orders/records.py).
ESSENTIAL_MATERIALS = frozenset({"id_card", "application_form", "entrustment"})
# The item-level 容缺 switch of older files: now derived from the materials' may_follow marks
# (ItemVersion.allow_accept_with_gaps); a file may still carry it if it agrees with them.
LEGACY_GAPS_FIELD = "allow_accept_with_gaps"
ITEM_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,19}$")
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MATERIAL_CODE = re.compile(r"^[a-z0-9_]{1,40}$")
DEPARTMENT_CODE = re.compile(r"^[a-z0-9_]{1,30}$")
# Widths of the columns in app/models/catalogue.py: PostgreSQL refuses anything longer.
ITEM_NAME_MAX, PHONE_MAX, DEPARTMENT_NAME_MAX = 100, 20, 60
# Integer columns; no published time limit comes near these.
MAX_DAYS, MAX_FEE_FEN, MAX_COUNT = 999, 2_000_000_000, 99


class MaterialSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    code: str
    name: str
    description: str = ""
    form: str = "original"
    count: int = 1
    required: bool = True
    photo_ok: bool = True
    sample: str | None = None
    # 容缺受理: this required material may follow after acceptance (never the ID card, the
    # application form or the entrustment).
    may_follow: bool = False


class FeeSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount_fen: int = 0
    basis: str | None = None


class ItemSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    code: str
    name: str
    department: str  # the lead department (主办); for a joint item the lead window
    # 联办件: the other departments (codes) that handle it with the lead; none for other kinds.
    co_departments: list[str] = msgspec.field(default_factory=list)
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

    @property
    def allow_accept_with_gaps(self) -> bool:
        """容缺受理: some required material may follow after acceptance."""
        return any(m.may_follow and m.required for m in self.materials)


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


class DocumentInvalid(errors.FileProblems[Problem]):
    """A catalogue file's problems; nothing of it is imported."""


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """What the database already holds that a file is checked against, so problems that need
    it are listed in the same round as the others."""

    departments: frozenset[str] = frozenset()
    retired: Mapping[str, ItemSpec] = field(default_factory=dict)  # code -> its last guide


@dataclass
class _Rows:
    """Where each entry of the file sits, to label its problems."""

    items: list[str]
    departments: list[str]
    materials: list[list[str]] | None = None  # xlsx: each item's rows in the materials sheet


def read_document(data: bytes, filename: str, known: Known | None = None) -> CatalogueDocument:
    """Parse and check; raises DocumentInvalid listing every problem found."""
    if filename.lower().endswith(".xlsx"):
        raw, rows, problems = _read_xlsx(data)
    else:
        raw, rows, problems = _read_yaml(data)
    if raw is not None:
        problems += _check_raw(raw, rows, known or Known())
    if problems or raw is None:
        raise DocumentInvalid(problems)
    try:
        return msgspec.convert(raw, CatalogueDocument)
    except msgspec.ValidationError:  # every field was checked above; this is a last guard
        raise DocumentInvalid([Problem(row="file", field="", message="文件格式不正确")]) from None


def _read_yaml(data: bytes) -> tuple[dict[str, Any] | None, _Rows, list[Problem]]:
    no_rows = _Rows(items=[], departments=[])
    try:
        raw = yaml.load(data, Loader=SafeLoader)  # noqa: S506 - the safe loader, in C when built
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "file"
        return None, no_rows, [Problem(row=where, field="", message="YAML 格式错误")]
    if not isinstance(raw, dict):
        return None, no_rows, [Problem(row="file", field="", message="文件内容应为含 items 的对象")]

    def labels(section: str) -> list[str]:
        entries = raw.get(section)
        if not isinstance(entries, list):
            return []
        return [
            f"{section}[{i}] {e.get('code', '')}".strip()
            if isinstance(e, dict)
            else f"{section}[{i}]"
            for i, e in enumerate(entries)
        ]

    return raw, _Rows(items=labels("items"), departments=labels("departments")), []


def _check_raw(raw: dict[str, Any], rows: _Rows, known: Known) -> list[Problem]:
    """Every problem of every entry: each field is converted on its own, and the rules run on
    the fields that converted, so one wrong type hides nothing else."""
    problems = [
        Problem(row="file", field=str(key), message="不认识的字段")
        for key in raw
        if key not in ("version", "departments", "items")
    ]
    if "version" in raw and _value(raw["version"], int)[0] is _BAD:
        problems.append(Problem(row="file", field="version", message="应为整数"))
    sections: dict[str, list[Any]] = {}
    for section in ("departments", "items"):
        entries = raw.get(section, [])
        if not isinstance(entries, list):
            problems.append(Problem(row="file", field=section, message="应为列表"))
            entries = []
        sections[section] = entries

    department_codes: dict[str, str] = {}
    for i, entry in enumerate(sections["departments"]):
        row = _label(rows.departments, i, "departments")
        values, found = _values(entry, DepartmentSpec)
        found += check_department(values)
        code = values.get("code")
        if isinstance(code, str):
            if code in department_codes:
                found.append(("code", f"部门代码重复(与 {department_codes[code]} 相同)"))
            department_codes.setdefault(code, row)
        problems += [Problem(row=row, field=f, message=m) for f, m in found]

    departments = set(department_codes) | known.departments
    item_codes: dict[str, str] = {}
    for i, entry in enumerate(sections["items"]):
        row = _label(rows.items, i, "items")
        legacy = _legacy_gaps(entry)
        values, found = _values(entry, ItemSpec)
        found += legacy(values) + check_values(values, departments)
        code = values.get("code")
        if isinstance(code, str):
            if code in item_codes:
                found.append(("code", f"事项编码重复(与 {item_codes[code]} 相同)"))
            item_codes.setdefault(code, row)
            retired = known.retired.get(code)
            if retired is not None and (found or not same_item(_spec(entry), retired)):
                found.append(("code", f"事项 {code} 已停用: 请先恢复该事项, 或从文件中删去这一行"))
        material_rows = rows.materials[i] if rows.materials and i < len(rows.materials) else None
        problems += [_placed(row, material_rows, f, m) for f, m in found]
    return problems


def _legacy_gaps(entry: Any) -> Callable[[Mapping[str, Any]], list[tuple[str, str]]]:
    """Take an older file's item-level `allow_accept_with_gaps` out of the entry: it is
    accepted where it says what the materials' may_follow marks say (so a file exported
    before the marks imports as it is); otherwise a problem says what to write instead."""
    if not isinstance(entry, dict) or LEGACY_GAPS_FIELD not in entry:
        return lambda values: []
    said = entry.pop(LEGACY_GAPS_FIELD)

    def check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
        if not isinstance(said, bool):
            return [(LEGACY_GAPS_FIELD, "应为是或否")]
        if "materials" not in values:
            return []
        marked = any(m.get("may_follow") and m.get("required") for m in values["materials"])
        if said == marked:
            return []
        if said:
            message = (
                "容缺受理现按材料标注: 请删去本字段, 在可以后补的必需材料上写 may_follow: true"
                "(身份证、申请表、委托书除外)"
            )
        else:
            message = "本字段已不再使用, 容缺受理由材料的 may_follow 决定: 请删去本字段"
        return [(LEGACY_GAPS_FIELD, message)]

    return check


def _label(labels: list[str], i: int, section: str) -> str:
    return labels[i] if i < len(labels) else f"{section}[{i}]"


def _spec(entry: Any) -> ItemSpec:
    return msgspec.convert(entry, ItemSpec)


MATERIAL_FIELD = re.compile(r"^materials\[(\d+)\]\.?(.*)$")


def _placed(row: str, material_rows: list[str] | None, field: str, message: str) -> Problem:
    """A material's problem on its own row when the materials have rows of their own (xlsx)."""
    match = MATERIAL_FIELD.match(field)
    if material_rows is not None and match and int(match[1]) < len(material_rows):
        return Problem(row=material_rows[int(match[1])], field=match[2], message=message)
    return Problem(row=row, field=field, message=message)


_BAD = object()  # a field whose value could not be converted


def _values(raw: Any, struct: type[msgspec.Struct]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Each field of `raw` converted on its own (msgspec alone stops at the first bad one):
    the values that converted, defaults filled in, and (field, message) for each problem."""
    if not isinstance(raw, dict):
        return {}, [("", "应为一组字段(对象)")]
    fields = {f.encode_name: f for f in msgspec.structs.fields(struct)}
    problems = [(str(key), "不认识的字段(列)") for key in raw if key not in fields]
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in raw:
            if spec.required:
                problems.append((name, "缺少必填项"))
            elif spec.default is not msgspec.NODEFAULT:
                values[name] = spec.default
            else:
                values[name] = msgspec.to_builtins(spec.default_factory())
            continue
        value, found = _value(raw[name], spec.type)
        problems += [(_join(name, sub), message) for sub, message in found]
        if value is not _BAD:
            values[name] = value
    return values, problems


def _value(raw: Any, type_: Any) -> tuple[Any, list[tuple[str, str]]]:
    """One value: structs and lists of structs field by field (their good parts are kept),
    anything else whole."""
    if _is_struct(type_):
        return _values(raw, type_)
    args = get_args(type_)
    if get_origin(type_) is list and args and _is_struct(args[0]):
        if not isinstance(raw, list):
            return _BAD, [("", "应为列表")]
        out, problems = [], []
        for j, element in enumerate(raw):
            value, found = _values(element, args[0])
            out.append(value)
            problems += [(_join(f"[{j}]", sub), message) for sub, message in found]
        return out, problems
    try:
        return msgspec.convert(raw, type_), []
    except msgspec.ValidationError:
        return _BAD, [("", f"应为{_noun(type_)}")]


def _is_struct(type_: Any) -> bool:
    return isinstance(type_, type) and issubclass(type_, msgspec.Struct)


def _join(name: str, sub: str) -> str:
    if not sub:
        return name
    return name + sub if sub.startswith("[") else f"{name}.{sub}"


def _noun(type_: Any) -> str:
    """How a type is said to whoever fills in the spreadsheet."""
    args = [a for a in get_args(type_) if a is not type(None)]
    if get_origin(type_) is list:
        return f"{_noun(args[0])}的列表" if args else "列表"
    if len(args) < len(get_args(type_)):
        return f"{_noun(args[0])}或留空"
    names = {bool: "是或否", int: "整数", str: "文字"}
    return names.get(type_, "一组字段(对象)")


def same_guide(a: ItemSpec, b: ItemSpec) -> bool:
    """The same published guide, whatever the levels it is switched on at."""
    return msgspec.structs.replace(a, enabled=[]) == msgspec.structs.replace(b, enabled=[])


def same_item(a: ItemSpec, b: ItemSpec) -> bool:
    return same_guide(a, b) and set(a.enabled) == set(b.enabled)


# Fields of a guide that may run over several lines; all other text is one line.
MULTILINE_FIELDS = frozenset({"conditions", "legal_basis", "description", "basis"})


def _text_problems(value: Any, path: str = "", key: str = "") -> list[tuple[str, str]]:
    """Control characters anywhere in a guide's converted fields (app/text.py)."""
    if isinstance(value, str):
        problem = text_problem(value, multiline=key in MULTILINE_FIELDS)
        return [(path, problem)] if problem else []
    if isinstance(value, Mapping):
        return [
            p
            for k, v in value.items()
            for p in _text_problems(v, f"{path}.{k}" if path else str(k), str(k))
        ]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _text_problems(v, f"{path}[{i}]", key)]
    return []


def check_department(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = _text_problems(values)
    if "code" in values and not DEPARTMENT_CODE.match(values["code"]):
        out.append(("code", "部门代码只能用小写字母、数字和下划线, 不超过30位"))
    name = values.get("name")
    if isinstance(name, str) and (not name.strip() or len(name) > DEPARTMENT_NAME_MAX):
        out.append(("name", f"部门名称不能为空, 且不超过{DEPARTMENT_NAME_MAX}字"))
    return out


def check_item(item: ItemSpec, departments: Collection[str] | None) -> list[tuple[str, str]]:
    """Every rule of a guide, as (field, Chinese message) pairs; empty when the item is good."""
    return check_values(msgspec.to_builtins(item), departments)


def check_values(
    v: Mapping[str, Any], departments: Collection[str] | None
) -> list[tuple[str, str]]:
    """The rules of a guide on whichever of its fields converted (a rule on a field that did
    not is skipped: that field already has its problem)."""
    out: list[tuple[str, str]] = _text_problems(v)
    has = v.keys().__contains__
    if has("code") and not ITEM_CODE.match(v["code"]):
        out.append(("code", "事项编码只能用大写字母、数字和连字符,3到20位"))
    if has("name") and (not v["name"].strip() or len(v["name"]) > ITEM_NAME_MAX):
        out.append(("name", f"事项名称不能为空,且不超过{ITEM_NAME_MAX}字"))
    if has("department") and departments is not None and v["department"] not in departments:
        out.append(("department", f"未知部门 {v['department']}"))
    for name, allowed, label in (
        ("level", LEVELS, "办理层级"),
        ("kind", KINDS, "事项类型"),
        ("mode", MODES, "办理方式"),
    ):
        if has(name) and v[name] not in allowed:
            out.append((name, f"{label}应为 {'/'.join(allowed)} 之一"))
    for name, label in (("promised_days", "承诺时限"), ("legal_days", "法定时限")):
        if has(name) and v[name] < 0:
            out.append((name, f"{label}不能为负数"))
        elif has(name) and v[name] > MAX_DAYS:
            out.append((name, f"{label}不能超过{MAX_DAYS}个工作日"))
    if has("legal_days") and has("promised_days") and 0 <= v["legal_days"] < v["promised_days"]:
        out.append(("legal_days", "法定时限不能少于承诺时限"))
    if has("kind") and has("promised_days") and v["kind"] == "immediate" and v["promised_days"]:
        out.append(("promised_days", "即办件的承诺时限应为0"))
    if has("kind") and has("level") and v["kind"] == "immediate" and v["level"] == "district":
        out.append(
            (
                "level",
                "即办件须属于镇街权限, 办理层级应为 town 或 village;"
                " 须报区县审批的事项应为上报件(escalated)",
            )
        )
    if has("kind") and has("co_departments"):
        out += _check_co_departments(v, departments)
    if has("mode") and has("in_person"):
        if v["mode"] == "consult" and not v["in_person"]:
            out.append(("in_person", "咨询服务事项须本人到场"))
        if v["in_person"] and v["mode"] == "proxy":
            out.append(("mode", "须本人到场的事项不能全程代理"))
    fee = v.get("fee", {})
    if "amount_fen" in fee and not 0 <= fee["amount_fen"] <= MAX_FEE_FEN:
        out.append(("fee.amount_fen", "收费金额不能为负数, 也不能超过两千万元"))
    if fee.get("amount_fen", 0) > 0 and "basis" in fee and not (fee["basis"] or "").strip():
        out.append(("fee.basis", "收费事项须写明收费依据"))
    if has("phone") and (not v["phone"].strip() or len(v["phone"]) > PHONE_MAX):
        out.append(("phone", f"咨询电话不能为空, 且不超过{PHONE_MAX}个字符"))
    for name, label in (("aliases", "俗称"), ("steps", "办理环节")):
        for k, text in enumerate(v.get(name, [])):
            if not text.strip():
                out.append((f"{name}[{k}]", f"{label}不能为空"))
            elif LIST_SEPARATOR in text:
                out.append((f"{name}[{k}]", f"{label}中不能含有 {LIST_SEPARATOR} 符号"))
    if has("enabled"):
        out += _check_enabled(v["enabled"])
    out += _check_materials(v)
    return out


def _check_co_departments(
    v: Mapping[str, Any], departments: Collection[str] | None
) -> list[tuple[str, str]]:
    """联办件: two or more departments, coordinated by the lead (`department`); other kinds
    are handled by their department alone."""
    codes: list[str] = v["co_departments"]
    if v["kind"] != "joint":
        return (
            [("co_departments", "只有联办件(joint)才写协办部门, 其他事项应留空")] if codes else []
        )
    if not codes:
        return [("co_departments", "联办件须写明至少一个协办部门(部门代码)")]
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for k, code in enumerate(codes):
        where = f"co_departments[{k}]"
        if code in seen:
            out.append((where, f"协办部门 {code} 重复"))
        elif "department" in v and code == v["department"]:
            out.append((where, "协办部门不能是牵头部门本身"))
        elif departments is not None and code not in departments:
            out.append((where, f"未知部门 {code}"))
        seen.add(code)
    return out


def _check_enabled(levels: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if any(level not in ENABLE_LEVELS for level in levels):
        out.append(("enabled", "开通层级只能是 town 或 village"))
    elif len(set(levels)) < len(levels):
        out.append(("enabled", "开通层级重复"))
    elif "village" in levels and "town" not in levels:
        out.append(("enabled", "村开通的事项, 所属乡镇也须开通(应写 town 和 village)"))
    return out


def _check_materials(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if "materials" not in v:
        return out
    materials: list[dict[str, Any]] = v["materials"]
    if not materials:
        out.append(("materials", "至少要有一项申请材料"))
    elif all("required" in m for m in materials) and not any(m["required"] for m in materials):
        out.append(("materials", "至少要有一项必需材料"))
    codes: set[str] = set()
    for j, m in enumerate(materials):
        where = f"materials[{j}]"
        if "name" in m and not m["name"].strip():
            out.append((f"{where}.name", "材料名称不能为空"))
        if "code" in m and not MATERIAL_CODE.match(m["code"]):
            out.append((f"{where}.code", "材料编码只能用小写字母、数字和下划线"))
        elif "code" in m and m["code"] in codes:
            out.append((f"{where}.code", f"材料编码 {m['code']} 重复"))
        if "code" in m:
            codes.add(m["code"])
        if "form" in m and m["form"] not in FORMS:
            out.append((f"{where}.form", "材料形式应为 original(原件) 或 copy(复印件)"))
        if "count" in m and not 1 <= m["count"] <= MAX_COUNT:
            out.append((f"{where}.count", f"份数应为1到{MAX_COUNT}"))
        if m.get("may_follow"):
            if m.get("code") in ESSENTIAL_MATERIALS:
                out.append((f"{where}.may_follow", "申请人身份证、申请表和委托书不能容缺后补"))
            elif "required" in m and not m["required"]:
                out.append((f"{where}.may_follow", "只有必需材料才能标注容缺后补"))
    return out


# --- xlsx ---------------------------------------------------------------------------------

ITEM_COLUMNS = [
    "code",
    "name",
    "aliases",
    "department",
    "co_departments",
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
]
# Columns of older files, still read (and checked against the materials), no longer written.
LEGACY_ITEM_COLUMNS = [LEGACY_GAPS_FIELD]
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
    "may_follow",
]
BOOL_COLUMNS = {"in_person", LEGACY_GAPS_FIELD, "required", "photo_ok", "may_follow"}
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
        sheet.append(sheet_row(sheet, [_cell_out(values[c]) for c in ITEM_COLUMNS]))
        for m in item.materials:
            row = {"item_code": item.code, **msgspec.to_builtins(m)}
            materials.append(sheet_row(materials, [_cell_out(row[c]) for c in MATERIAL_COLUMNS]))
    departments = book.create_sheet("departments")
    departments.append(["code", "name"])
    for d in document.departments:
        departments.append(sheet_row(departments, [d.code, d.name]))
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
    if column == "co_departments":
        return [part for part in CODE_SEPARATORS.split(str(value)) if part]
    return value


def _read_xlsx(data: bytes) -> tuple[dict[str, Any] | None, _Rows, list[Problem]]:
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        problem = Problem(row="file", field="", message="无法读取该 xlsx 文件")
        return None, _Rows(items=[], departments=[]), [problem]
    problems: list[Problem] = []
    sheets: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    expected = {
        "items": ITEM_COLUMNS + LEGACY_ITEM_COLUMNS,
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
    item_codes = {str(row.get("code")) for _, row in sheets["items"]}
    materials: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for n, row in sheets["materials"]:
        item_code = row.pop("item_code", None)
        label = f"materials!{n} {item_code or ''}".strip()
        if item_code is None or not str(item_code).strip():
            problems.append(Problem(row=label, field="item_code", message="缺少事项编码"))
        elif str(item_code) not in item_codes:
            problems.append(
                Problem(row=label, field="item_code", message=f"items 表中没有事项 {item_code}")
            )
        else:
            values = {k: v for k, v in row.items() if v is not None}
            materials.setdefault(str(item_code), []).append((label, values))
    items, item_rows, material_rows = [], [], []
    for n, row in sheets["items"]:
        fee = {"amount_fen": row.pop("fee_fen", None) or 0, "basis": row.pop("fee_basis", None)}
        item = {k: v for k, v in row.items() if v is not None}
        item["fee"] = fee
        own = materials.get(str(row.get("code")), [])
        item["materials"] = [values for _, values in own]
        items.append(item)
        item_rows.append(f"items!{n} {row.get('code') or ''}".strip())
        material_rows.append([label for label, _ in own])
    departments = [row for _, row in sheets["departments"]]
    labels = _Rows(
        items=item_rows,
        departments=[f"departments!{n}" for n, _ in sheets["departments"]],
        materials=material_rows,
    )
    return {"version": 1, "departments": departments, "items": items}, labels, problems


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def encoded(document: CatalogueDocument, file_format: str) -> tuple[bytes, str]:
    """The document as a file to download, and its media type: xlsx, or YAML."""
    if file_format == "xlsx":
        return write_xlsx(document), XLSX
    return dump_yaml(document), "application/yaml"


def dump_yaml(document: CatalogueDocument) -> bytes:
    return yaml.safe_dump(
        msgspec.to_builtins(document), allow_unicode=True, sort_keys=False, width=120
    ).encode()
