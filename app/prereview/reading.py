"""Reading a photographed document: what kind it is, and the fields of an identity card.

`read_document(image_bytes)` decodes the photo at most `MAX_SIDE` pixels on its longer side
(a JPEG straight at that size, by its DCT scaling), runs the text recogniser, puts the lines
it found back into rows (the card's tilt taken out of their coordinates), tells the kind
from the printed labels each kind carries, and takes the fields from the rows by their
labels:

- the front (姓名 性别 民族 出生 住址 公民身份号码): name, sex, ethnicity, birth date, address
  and the 18-character number, its GB 11643 check character verified;
- the back (中华人民共和国 居民身份证 签发机关 有效期限): issuing authority and validity period,
  start to end or to 长期;
- a disability certificate (残疾人证 残疾类别 残疾等级 证号): name, sex, the 20-character
  number (the ID number, category and grade), category, grade, validity;
- a bank card (银联 借记卡, a number that passes its Luhn check) or a passbook's page (存折 户名
  账号): the bank, the number, and a passbook's 户名;
- a household-register page (常住人口登记卡): name and number.

A number whose check character is wrong is repaired only when the recogniser itself was
unsure of that line, one character was misread for a look-alike, and exactly one repair
gives a plausible number (a province, a real birth date, the birth date printed beside
it): a clearly printed wrong number stays as it is, and is reported.

Pure and synchronous (CPU-bound, about half a second a photo on one core): run it in a worker
thread or a job. It never raises: an image it cannot open reads as unreadable, and without
the recogniser installed every reading says 未预审 (status engine_missing).
"""

from __future__ import annotations

import enum
import io
import logging
import math
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

import msgspec
from PIL import Image, ImageOps

import app.prereview.idnumber as idnumber
from app.prereview.engine import Engine, OcrLine, load_engine

log = logging.getLogger("daiban.prereview")

DocumentKind = Literal[
    "id_card_front",
    "id_card_back",
    "hukou_page",
    "disability_card",
    "bank_card",
    "passbook",
    "other",
    "unreadable",
]
Status = Literal["read", "engine_missing"]

MAX_SIDE: Final = 1280  # the photo is read at most this large (bench/prereview.py)
MIN_TEXT: Final = 12  # fewer Chinese characters read with confidence: unreadable
SURE_LINE: Final = 0.6  # a line counts as read at this confidence and above
PROSE: Final = 16  # Chinese characters in one line: running text, not a card
KIND_SHARE: Final = 0.3  # a kind needs this share of its printed marks found
REPAIR_BELOW: Final = 0.95  # a number is repaired only when its line scored below this
NOT_REVIEWED: Final = "未预审：本机未安装证件识别组件"

ETHNICITIES: Final = (
    "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山"
    " 拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米"
    " 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺"
).split()

# The marks each kind carries, with their weight; a kind's share is the weight found over
# its total. A number that passes its check counts for the front and the register page.
MARKS: Final[dict[DocumentKind, dict[str, float]]] = {
    "id_card_front": {
        "姓名": 1,
        "性别": 1,
        "民族": 1,
        "出生": 1,
        "住址": 1.5,
        "公民身份号码": 2,
    },
    "id_card_back": {
        "中华人民共和国": 2,
        "居民身份证": 2,
        "签发机关": 1.5,
        "有效期限": 1.5,
    },
    "hukou_page": {
        "常住人口登记卡": 3,
        "户主": 1,
        "曾用名": 1,
        "出生地": 1,
        "籍贯": 1,
        "宗教信仰": 1,
        "文化程度": 1,
        "婚姻状况": 1,
        "服务处所": 1,
        "职业": 1,
        "迁来": 1,
        "公民身份证件编号": 1.5,
        "登记日期": 1,
    },
    "disability_card": {
        "残疾人证": 3,
        "残疾类别": 1.5,
        "残疾等级": 1.5,
        "证号": 1,
        "有效期至": 1,
    },
    "bank_card": {
        "银联": 2,
        "UnionPay": 1,
        "借记卡": 1.5,
        "银行": 1,
        "信用社": 1,
    },
    "passbook": {
        "存折": 2,
        "户名": 1.5,
        "账号": 1.5,
        "开户": 1,
        "储蓄": 1,
    },
}
NUMBER_WEIGHT: Final = 2.0  # a number that passes its check: the front or the register page
VALIDITY_WEIGHT: Final = 2.0  # a validity period: the back
CONTENT_WEIGHT: Final = 1.0  # a date of birth in 年月日, an address: the front
ACCOUNT_WEIGHT: Final = 2.0  # a card number that passes its Luhn check: a bank card
DISABILITY_CATEGORIES: Final = ("视力", "听力", "言语", "肢体", "智力", "精神", "多重")
DISABILITY_GRADES: Final = ("一级", "二级", "三级", "四级")
_BIRTH_TEXT = re.compile(r"\d{4}年|\d月\d{1,2}|\d{1,2}日")
_ADDRESS_TEXT = re.compile(r"(省|市|县|区|旗).{0,12}(镇|乡|村|街道|路|号)")
_AUTHORITY_TEXT = re.compile(r"公安局|分局|派出所")
# Labels that end a value on the same row ("姓名王秀英性别男" on a register page).
FRONT_LABELS: Final = ("姓名", "性别", "民族", "出生", "住址", "公民身份号码")
HUKOU_LABELS: Final = ("姓名", "性别", "曾用名", "民族", "出生", "籍贯", "户主", "公民身份")


class Reading(msgspec.Struct, frozen=True, kw_only=True):
    """What was read on one photo. Dates are dates; absent fields are None."""

    status: Status
    kind: DocumentKind | None  # None: not reviewed
    confidence: float  # of the kind, 0-1
    name: str | None = None
    sex: str | None = None
    ethnicity: str | None = None
    birth: date | None = None
    address: str | None = None
    id_number: str | None = None
    id_number_valid: bool | None = None  # its GB 11643 check character is right
    id_number_repaired: bool = False  # one misread character was put right
    disability_number: str | None = None  # 残疾人证号: the ID number, category, grade
    disability_category: str | None = None  # 视力 听力 言语 肢体 智力 精神 多重
    disability_grade: str | None = None  # 一级 … 四级
    bank: str | None = None
    account_number: str | None = None  # a bank card's or passbook's number, digits only
    account_number_valid: bool | None = None  # a card's Luhn check (None: a passbook's)
    authority: str | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    long_term: bool = False  # 有效期限 … 长期
    lines: tuple[str, ...] = ()  # the text as read, row by row
    engine: str = ""
    seconds: float = 0.0
    note: str = ""


class _Auto(enum.Enum):
    AUTO = "auto"


AUTO: Final = _Auto.AUTO


def read_document(image_bytes: bytes, engine: Engine | _Auto | None = AUTO) -> Reading:
    """Read a photo of a document. `engine`: the process's recogniser by default (loaded on
    first use); None reads nothing and says 未预审, as when it is not installed."""
    started = time.perf_counter()
    if engine is AUTO:
        engine = load_engine()
    if engine is None:
        return Reading(status="engine_missing", kind=None, confidence=0.0, note=NOT_REVIEWED)
    try:
        image = _decode(image_bytes)
    except Exception as exc:  # not an image Pillow opens: nothing to read
        log.info("prereview: photo not decoded (%s)", type(exc).__name__)
        return Reading(
            status="read",
            kind="unreadable",
            confidence=1.0,
            engine=engine.name,
            note="无法打开这张图片",
        )
    try:
        lines = engine(image)
    except Exception:
        log.exception("prereview: the recogniser failed")
        lines = []
    reading = interpret(lines)
    return msgspec.structs.replace(
        reading, engine=engine.name, seconds=round(time.perf_counter() - started, 3)
    )


def _decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as opened:
        if opened.format == "JPEG":
            scale = min(1.0, MAX_SIDE / max(opened.size))
            opened.draft("RGB", (math.ceil(opened.width * scale), math.ceil(opened.height * scale)))
        image = ImageOps.exif_transpose(opened).convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


# --------------------------------------------------------------------------- layout


@dataclass(slots=True)
class _Segment:
    text: str
    score: float
    left: float
    right: float
    middle: float  # of its height, in the card's own (untilted) coordinates
    height: float


@dataclass(slots=True)
class _Row:
    segments: list[_Segment]

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)

    @property
    def middle(self) -> float:
        return sum(s.middle for s in self.segments) / len(self.segments)

    @property
    def height(self) -> float:
        return max(s.height for s in self.segments)

    @property
    def score(self) -> float:
        return min(s.score for s in self.segments)


def _normal(text: str) -> str:
    """Full-width forms to half-width, spaces out."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def rows_of(lines: Sequence[OcrLine]) -> list[_Row]:
    """The lines in rows, top to bottom, each left to right, after turning their boxes by
    the page's tilt (the median slope of the longer lines' top edges)."""
    slopes = []
    for line in lines:
        (x0, y0), (x1, y1) = line.box[0], line.box[1]
        width = math.hypot(x1 - x0, y1 - y0)
        height = math.hypot(line.box[3][0] - x0, line.box[3][1] - y0)
        if width > 2 * height and abs(y1 - y0) < width:
            slopes.append(math.atan2(y1 - y0, x1 - x0))
    angle = sorted(slopes)[len(slopes) // 2] if slopes else 0.0
    cos, sin = math.cos(-angle), math.sin(-angle)
    segments = []
    for line in lines:
        text = _normal(line.text)
        if not text:
            continue
        turned = [(x * cos - y * sin, x * sin + y * cos) for x, y in line.box]
        xs, ys = [p[0] for p in turned], [p[1] for p in turned]
        segments.append(
            _Segment(text, line.score, min(xs), max(xs), (min(ys) + max(ys)) / 2, max(ys) - min(ys))
        )
    rows: list[_Row] = []
    for segment in sorted(segments, key=lambda s: s.middle):
        row = rows[-1] if rows else None
        if row is not None and abs(segment.middle - row.middle) < 0.5 * max(
            segment.height, row.height
        ):
            row.segments.append(segment)
        else:
            rows.append(_Row([segment]))
    for row in rows:
        row.segments.sort(key=lambda s: s.left)
    return rows


# --------------------------------------------------------------------------- kinds


def _found(mark: str, text: str) -> float:
    """1 if `mark` is in `text`; 0.7 if it is with one character misread (marks of three
    characters and more); else 0."""
    if mark in text:
        return 1.0
    n = len(mark)
    if n < 3:
        return 0.0
    for i in range(len(text) - n + 1):
        if sum(a == b for a, b in zip(mark, text[i : i + n], strict=True)) >= n - 1:
            return 0.7
    return 0.0


_VALIDITY = re.compile(
    r"(\d{4})[.·,，。\-]?(\d{2})[.·,，。\-]?(\d{2})[-—–一~至_]+(长期|\d{4}[.·,，。\-]?\d{2}[.·,，。\-]?\d{2})"
)


def classify(
    text: str, number: float = 0.0, prose: bool = False, account: float = 0.0
) -> tuple[DocumentKind, float, dict[DocumentKind, float]]:
    """The kind, its confidence, and every kind's share of marks found. `number`: 1 for an
    identity number that passes its check, 0.75 for 18 characters with a real birth date
    inside, else 0; `prose`: a line of running text (16 Chinese characters and more), which
    no ID card has, halves the cards' shares; `account`: 1 for a card number of 16 to 19
    digits that passes its Luhn check, 0.5 for one that does not."""
    shares: dict[DocumentKind, float] = {}
    for kind, marks in MARKS.items():
        total = sum(marks.values())
        found = sum(w * _found(m, text) for m, w in marks.items())
        if kind in ("bank_card", "passbook"):
            total += ACCOUNT_WEIGHT
            found += ACCOUNT_WEIGHT * account
        if kind in ("id_card_front", "hukou_page"):
            total += NUMBER_WEIGHT
            found += NUMBER_WEIGHT * number
        if kind == "id_card_front":
            total += 2 * CONTENT_WEIGHT
            found += CONTENT_WEIGHT if _BIRTH_TEXT.search(text) else 0
            found += CONTENT_WEIGHT if _ADDRESS_TEXT.search(text) else 0
        if kind == "id_card_back":
            total += VALIDITY_WEIGHT + CONTENT_WEIGHT
            found += VALIDITY_WEIGHT if _VALIDITY.search(text) else 0
            found += CONTENT_WEIGHT if _AUTHORITY_TEXT.search(text) else 0
        if kind == "disability_card":  # its number: the ID number and two digits more
            total += NUMBER_WEIGHT
            found += NUMBER_WEIGHT * (number if _DISABILITY_NUMBER.search(text) else 0)
        shares[kind] = found / total * (0.5 if prose and kind != "hukou_page" else 1)
    ranked = sorted(shares.items(), key=lambda kv: kv[1], reverse=True)
    (best, share), (_, second) = ranked[0], ranked[1]
    if share >= KIND_SHARE:
        return best, round(max(0.0, min(1.0, share - second / 2)), 2), shares
    return "other", round(1 - share, 2), shares


# --------------------------------------------------------------------------- fields

_DIGITISH: Final = str.maketrans(
    {
        "O": "0",
        "o": "0",
        "D": "0",
        "Q": "0",
        "I": "1",
        "l": "1",
        "|": "1",
        "i": "1",
        "Z": "2",
        "z": "2",
        "S": "5",
        "s": "5",
        "B": "8",
        "b": "6",
        "G": "6",
        "g": "9",
        "x": "X",
        "×": "X",
        "乂": "X",
        "メ": "X",
    }
)
_RUN = re.compile(r"[0-9OoDQIl|iZzSsBbGgxX×乂メ]{15,}")
_DISABILITY_NUMBER = re.compile(r"\d{17}[\dX][1-7][1-4](?!\d)")
_ACCOUNT = re.compile(r"(?<![\dX])\d{16,19}(?![\dX])")


def luhn_valid(number: str) -> bool:
    """A card number's Luhn check (ISO/IEC 7812): every bank card of China UnionPay has one."""
    total = 0
    for i, c in enumerate(reversed(number)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _accounts_in(text: str) -> list[str]:
    """Runs of 16 to 19 digits (look-alike letters read as digits)."""
    return _ACCOUNT.findall(
        re.sub(r"[OoDQIl|iZzSsBbGg]", lambda m: m.group().translate(_DIGITISH), text)
    )


def _numbers_in(text: str) -> list[str]:
    """The 18-character runs in a row's text that look like an identity number (look-alike
    letters read as digits, X only last); a run of 19 or more gives its valid windows."""
    found = []
    for run in _RUN.findall(text):
        digits = run.translate(_DIGITISH)
        if sum(c.isdigit() for c in digits) < 15 or "X" in digits[:-1]:
            continue
        if len(digits) == 18:
            found.append(digits)
        elif len(digits) > 18:
            windows = [digits[i : i + 18] for i in range(len(digits) - 17)]
            valid = [w for w in windows if idnumber.is_valid(w)]
            found.extend(valid if len(valid) == 1 else [])
    return found


def _number(rows: Sequence[_Row], born: date | None) -> tuple[str | None, bool | None, bool]:
    """The number, whether it is valid, whether it was repaired."""
    candidates: list[tuple[str, _Row]] = [(n, row) for row in rows for n in _numbers_in(row.text)]
    if not candidates:
        return None, None, False
    valid = [(n, r) for n, r in candidates if idnumber.is_valid(n)]
    if valid:
        return valid[-1][0], True, False
    number, row = candidates[-1]
    if row.score < REPAIR_BELOW:
        repaired = idnumber.repair(number, born=born)
        if repaired is not None:
            return repaired, True, True
    return number, False, False


def _after(label: str, text: str, ends: Iterable[str] = ()) -> str | None:
    """What follows `label` in `text` (found with one character misread if it is long
    enough), up to the first of `ends`; None when the label is not there."""
    start = text.find(label)
    rest: str | None = text[start + len(label) :] if start >= 0 else None
    n = len(label)
    if rest is None and n >= 3:
        for i in range(len(text) - n + 1):
            if sum(a == b for a, b in zip(label, text[i : i + n], strict=True)) >= n - 1:
                rest = text[i + n :]
                break
    if rest is None:
        return None
    for end in ends:
        if end != label and (cut := rest.find(end)) >= 0:
            rest = rest[:cut]
    return rest


def _row_with(rows: Sequence[_Row], *labels: str) -> int | None:
    for i, row in enumerate(rows):
        if any(label in row.text for label in labels):
            return i
    return None


def _cjk_name(text: str | None) -> str | None:
    if not text:
        return None
    name = "".join(re.findall(r"[\u4e00-\u9fff·]", text)).strip("·")
    return name if 2 <= len(name) <= 8 else None


def _ethnicity(text: str | None) -> str | None:
    if not text:
        return None
    text = re.sub(r"[^\u4e00-\u9fff]", "", text).removesuffix("族")
    for name in sorted(ETHNICITIES, key=len, reverse=True):
        if text.startswith(name):
            return name
    # one character misread in a name of two or more
    for name in ETHNICITIES:
        n = len(name)
        if (
            n >= 2
            and len(text) >= n
            and sum(a == b for a, b in zip(name, text[:n], strict=True)) == n - 1
        ):
            return name
    return None


_CJK = re.compile(r"[\u4e00-\u9fff]")
_BIRTH = re.compile(r"(\d{4})\D{0,2}?(\d{1,2})\D{1,2}?(\d{1,2})")


def _date(year: str, month: str, day: str) -> date | None:
    try:
        value = date(int(year), int(month), int(day))
    except ValueError:
        return None
    return value if 1890 <= value.year <= 2100 else None


def _birth(text: str | None) -> date | None:
    if not text:
        return None
    match = _BIRTH.search(text)
    return _date(*match.groups()) if match else None


def _front(rows: Sequence[_Row]) -> dict[str, object]:
    fields: dict[str, object] = {}
    texts = [row.text for row in rows]
    name_at = _row_with(rows, "姓名")
    if name_at is not None:
        fields["name"] = _cjk_name(_after("姓名", texts[name_at], FRONT_LABELS))
    else:  # the label lost (pale print, glare): the first short row above the birth date
        for text in texts:
            if _BIRTH_TEXT.search(text) or _numbers_in(text):
                break
            if re.fullmatch(r"[\u4e00-\u9fff·]{2,5}", text) and text not in ("男", "女"):
                fields["name"] = text
                break
    fields["sex"] = _sex(rows, ("民族",))
    nation_at = _row_with(rows, "民族")
    if nation_at is not None:
        fields["ethnicity"] = _ethnicity(_after("民族", texts[nation_at]))
    birth_at = _row_with(rows, "出生")
    birth = _birth(_after("出生", texts[birth_at]) if birth_at is not None else None)
    if birth is None:
        birth = next((b for t in texts if "年" in t and (b := _birth(t))), None)
    fields["birth"] = birth
    number, valid, repaired = _number(rows, birth)
    fields.update(id_number=number, id_number_valid=valid, id_number_repaired=repaired)
    if number and valid:
        fields["sex"] = fields.get("sex") or idnumber.sex(number)
        fields["birth"] = fields.get("birth") or idnumber.birth_date(number)
    fields["address"] = _address(rows)
    return fields


def _address(rows: Sequence[_Row]) -> str | None:
    start = _row_with(rows, "住址")
    if start is None:
        return None
    first = _after("住址", rows[start].text) or ""
    label = next(s for s in rows[start].segments if "址" in s.text)
    parts = [first]
    for row in rows[start + 1 : start + 4]:
        if "号码" in row.text or "公民" in row.text or _numbers_in(row.text):
            break
        if row.middle - rows[start].middle > 5 * rows[start].height:
            break
        # the address's own lines start right of its label, not under it
        margin = label.left + rows[start].height
        parts.append("".join(s.text for s in row.segments if s.left > margin))
    address = "".join(parts)
    return address or None


def _back(rows: Sequence[_Row]) -> dict[str, object]:
    fields: dict[str, object] = {}
    texts = [row.text for row in rows]
    at = _row_with(rows, "签发机关", "机关")
    authority = _after("签发机关", texts[at]) if at is not None else None
    if not authority:
        authority = next((t for t in texts if re.search("(公安局|分局|派出所)$", t)), None)
    if authority:
        authority = re.sub(r"^[^\u4e00-\u9fff]+", "", authority)
    fields["authority"] = authority or None
    at = _row_with(rows, "有效期限", "期限")
    candidates = ([texts[at]] if at is not None else []) + texts
    for text in candidates:
        match = _VALIDITY.search(text)
        if match:
            start = _date(*_digits_date(match.group(1) + match.group(2) + match.group(3)))
            end_text = match.group(4)
            if end_text == "长期":
                fields.update(valid_from=start, valid_until=None, long_term=True)
            else:
                digits = re.sub(r"\D", "", end_text)
                fields.update(valid_from=start, valid_until=_date(*_digits_date(digits)))
            break
    return fields


def _digits_date(digits: str) -> tuple[str, str, str]:
    return digits[:4], digits[4:6], digits[6:8]


def _hukou(rows: Sequence[_Row]) -> dict[str, object]:
    fields: dict[str, object] = {}
    at = _row_with(rows, "姓名")
    if at is not None:
        fields["name"] = _cjk_name(_after("姓名", rows[at].text, HUKOU_LABELS))
    number, valid, repaired = _number(rows, None)
    fields.update(id_number=number, id_number_valid=valid, id_number_repaired=repaired)
    return fields


def _sex(rows: Sequence[_Row], ends: Iterable[str]) -> str | None:
    """男 or 女 after the 性别 label, before the first of `ends`; None when not read."""
    at = _row_with(rows, "性别")
    found = (
        re.search("[男女]", _after("性别", rows[at].text, ends) or "") if at is not None else None
    )
    return found.group() if found else None


def _disability(rows: Sequence[_Row]) -> dict[str, object]:
    fields: dict[str, object] = {}
    texts = [row.text for row in rows]
    labels = ("姓名", "性别", "残疾类别", "残疾等级", "证号", "有效期至")
    at = _row_with(rows, "姓名")
    if at is not None:
        fields["name"] = _cjk_name(_after("姓名", texts[at], labels))
    fields["sex"] = _sex(rows, labels)
    text = "".join(texts)
    fields["disability_category"] = next((c for c in DISABILITY_CATEGORIES if c in text), None)
    fields["disability_grade"] = next((g for g in DISABILITY_GRADES if g in text), None)
    match = _DISABILITY_NUMBER.search(text.translate(_DIGITISH))
    if match:
        full = match.group()
        fields["disability_number"] = full
        fields["id_number"] = full[:18]
        fields["id_number_valid"] = idnumber.is_valid(full[:18])
    else:
        number, valid, repaired = _number(rows, None)
        fields.update(id_number=number, id_number_valid=valid, id_number_repaired=repaired)
    at = _row_with(rows, "有效期至", "有效期")
    until = _after("有效期至", texts[at]) if at is not None else None
    if until and "长期" in until:
        fields["long_term"] = True
    elif until:
        fields["valid_until"] = _birth(until)
    return fields


def _bank(rows: Sequence[_Row], kind: DocumentKind, numbers: list[str]) -> dict[str, object]:
    """`numbers`: the runs of 16 to 19 digits read, in order (interpret found them)."""
    fields: dict[str, object] = {}
    texts = [row.text for row in rows]
    fields["bank"] = next(
        (re.sub(r"(活期)?储蓄存折$|借记卡$", "", t) for t in texts if re.search("银行|信用社", t)),
        None,
    )
    if numbers:
        valid = [n for n in numbers if luhn_valid(n)]
        number = (valid or numbers)[0]
        fields["account_number"] = number
        fields["account_number_valid"] = luhn_valid(number) if kind == "bank_card" else None
    if kind == "passbook":
        at = _row_with(rows, "户名")
        if at is not None:
            fields["name"] = _cjk_name(_after("户名", texts[at], ("账号",)))
    return fields


def interpret(lines: Sequence[OcrLine]) -> Reading:
    """The reading of the recogniser's lines (no image needed: the tests' and the bench's
    way to look at extraction alone)."""
    rows = rows_of(lines)
    text = "".join(row.text for row in rows)
    sure = sum(len(_CJK.findall(line.text)) for line in lines if line.score >= SURE_LINE)
    numbers = [n for row in rows for n in _numbers_in(row.text)]
    number = max(
        (1.0 if idnumber.is_valid(n) else 0.75 if idnumber.birth_date(n) else 0.0)
        for n in numbers or [""]
    )
    prose = any(len(_CJK.findall(line.text)) >= PROSE for line in lines)
    accounts = [n for row in rows for n in _accounts_in(row.text)]
    account = max((1.0 if luhn_valid(n) else 0.5) for n in accounts) if accounts else 0.0
    kind, confidence, _ = classify(text, number, prose, account)
    if kind == "other" and sure < MIN_TEXT:
        kind, confidence = "unreadable", round(1 - sure / MIN_TEXT, 2)
    fields: dict[str, object] = {}
    if kind == "id_card_front":
        fields = _front(rows)
    elif kind == "id_card_back":
        fields = _back(rows)
    elif kind == "hukou_page":
        fields = _hukou(rows)
    elif kind == "disability_card":
        fields = _disability(rows)
    elif kind in ("bank_card", "passbook"):
        fields = _bank(rows, kind, accounts)
    return Reading(
        status="read",
        kind=kind,
        confidence=confidence,
        lines=tuple(row.text for row in rows),
        **fields,  # type: ignore[arg-type]
    )
