"""A labelled set of document photos for 智能预审, drawn by the project itself (no real person).

    .venv/bin/python bench/prereview_set.py [--out DIR] [--seed 2026] [--per-level 100]

Draws ID card fronts and backs, household-register pages (常住人口登记卡), disability
certificates (残疾人证), bank cards and passbooks (存折), and other papers (a village
committee's certificate, a receipt) with Pillow in WenQuanYi Micro Hei (Debian's
`fonts-wqy-microhei`), for made-up people: names drawn from common surnames and given-name
characters, addresses in made-up villages, ID numbers with a valid GB 11643 check digit or,
for some, a wrong one; validity periods some of which have ended before `ON_DATE`. Then each
is "photographed" at one of three levels, as phones spoil photos of cards: laid on a table,
turned a few degrees, in perspective, blurred, dimmed or with a reflection, with camera
noise, saved as JPEG of some quality.

| level | turn | perspective | blur radius | light | JPEG quality | card's width in frame |
| --- | --- | --- | --- | --- | --- | --- |
| none | ±1° | 1 % | 0 | even | 92 | 75-85 % |
| moderate | ±2-5° | 2-4 % | 0.6-1.2 | dim 55-75 %, a reflection, or uneven | 55-75 | 60-80 % |
| heavy | ±6-12° | 5-8 % | 1.8-2.6 | dim 30-45 % and a strong reflection | 25-40 | 45-60 % |

Layouts are not copies of the real documents; they carry the same labels (姓名 性别 民族 出生
住址 公民身份号码 on the front; 中华人民共和国 居民身份证 签发机关 有效期限 on the back).
The same seed gives the same set, byte for byte. With --out, writes the JPEGs and a
labels.json there; bench/prereview.py and tests/prereview use `samples()` directly.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
ON_DATE = date(2026, 12, 1)  # the day the set's checks are made on (expiry is against it)
LEVELS = ("none", "moderate", "heavy")
CARD_W, CARD_H = 1000, 631  # 85.6 x 54 mm
FRAME_W, FRAME_H = 1600, 1200

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
    "苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史"
    "顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
)
GIVEN = (
    "秀英桂兰玉梅建国志强春华立新海涛丽娟德明国强红霞卫东淑珍明华永刚晓燕凤芝文静思远"
    "子涵浩然雨桐宇轩佳怡俊杰欣怡梓萱诗琪家豪嘉怡博文振华长林广平金凤少华秋菊冬梅瑞芳"
)
ETHNICITIES = ("汉",) * 12 + ("回", "满", "蒙古", "壮", "苗", "土家", "彝", "朝鲜", "维吾尔")
PLACES = (  # (region code, province, city, county): public division codes, made-up villages
    ("370406", "山东省", "枣庄市", "山亭区"),
    ("370402", "山东省", "枣庄市", "市中区"),
    ("370481", "山东省", "滕州市", ""),
    ("410522", "河南省", "安阳市", "安阳县"),
    ("130681", "河北省", "涿州市", ""),
    ("320322", "江苏省", "徐州市", "沛县"),
    ("510722", "四川省", "绵阳市", "三台县"),
    ("430621", "湖南省", "岳阳市", "岳阳县"),
)
TOWN_HEADS = "东西南北上下前后大小"
TOWN_TAILS = "庄集店河桥岭沟湖坡营屯寨"
STREETS = ("幸福", "和平", "团结", "兴隆", "育才", "建设", "人民", "胜利", "光明")

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"


def check_char(first17: str) -> str:
    """GB 11643's check character of the first 17 digits."""
    return CHECK[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


@dataclass
class Person:
    name: str
    sex: str
    ethnicity: str
    birth: date
    address: str
    id_number: str
    id_valid: bool  # its check digit is right
    authority: str
    valid_from: date
    valid_until: date | None  # None: 长期
    # Drawn only for the kinds that show them (make_sample): a disability certificate's
    # category and grade, a bank card's or passbook's bank and number.
    disability_category: str = ""
    disability_grade: str = ""
    bank: str = ""
    account_number: str = ""
    account_valid: bool = True  # its Luhn check digit is right (cards)

    def expired_on(self, day: date) -> bool:
        return self.valid_until is not None and self.valid_until < day


@dataclass
class Sample:
    name: str  # a file stem: level, kind, number
    kind: str  # id_card_front, id_card_back, hukou_page, other
    level: str
    image: bytes = field(repr=False)
    person: Person | None
    expired: bool


def make_person(rnd: random.Random, *, invalid: bool = False, expired: bool = False) -> Person:
    surname = rnd.choice(SURNAMES)
    given = "".join(rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2, 2, 2))))
    sex = rnd.choice("男女")
    code, province, city, county = rnd.choice(PLACES)
    town = rnd.choice(TOWN_HEADS) + rnd.choice(TOWN_TAILS) + "镇"
    village = rnd.choice(TOWN_HEADS) + rnd.choice(TOWN_TAILS) + "村"
    address = f"{province}{city}{county}{town}{village}"
    if rnd.random() < 0.5:
        address += f"{rnd.choice(STREETS)}路{rnd.randint(1, 300)}号"
    else:
        address += f"{rnd.randint(1, 400)}号"
    birth = date(1940, 1, 1) + timedelta(days=rnd.randint(0, 365 * 58))
    last = rnd.choice("13579" if sex == "男" else "02468")
    first17 = f"{code}{birth:%Y%m%d}{rnd.randint(0, 99):02d}{last}"
    check = check_char(first17)
    if invalid:
        check = rnd.choice([c for c in "0123456789X" if c != check])
    until: date | None
    if expired:  # its term ended before ON_DATE
        years = rnd.choice((5, 10, 20))
        until = ON_DATE - timedelta(days=rnd.randint(10, 1500))
        issued = _add_years(until, -years)
    else:
        issued = ON_DATE - timedelta(days=rnd.randint(30, 3000))
        age = (issued - birth).days // 365
        years = 5 if age < 16 else 10 if age < 26 else 20 if age < 46 else 0
        if years and _add_years(issued, years) <= ON_DATE:
            issued = ON_DATE - timedelta(days=rnd.randint(30, 365 * years - 30))
        until = _add_years(issued, years) if years else None
    authority = f"{city}公安局{county[:-1] + '分局' if county else ''}"
    return Person(
        name=surname + given,
        sex=sex,
        ethnicity=rnd.choice(ETHNICITIES),
        birth=birth,
        address=address,
        id_number=first17 + check,
        id_valid=not invalid,
        authority=authority,
        valid_from=issued,
        valid_until=until,
    )


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size)


def have_font() -> bool:
    return FONT_PATH.exists()


def _spaced(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: int,
    fill: tuple[int, int, int],
    gap: float = 0,
) -> None:
    """Text with extra space between characters (as the card sets its title and number)."""
    x, y = xy
    for ch in text:
        draw.text((x, y), ch, font=font(size), fill=fill)
        x += font(size).getlength(ch) + gap


def _card_base(rnd: random.Random) -> Image.Image:
    """Pale security background: a gradient with fine wavy lines, rounded corners."""
    card = Image.new("RGB", (CARD_W, CARD_H), (232, 238, 240))
    draw = ImageDraw.Draw(card)
    for y in range(CARD_H):
        t = y / CARD_H
        draw.line(
            [(0, y), (CARD_W, y)], fill=(int(236 - 10 * t), int(240 - 6 * t), int(236 + 6 * t))
        )
    phase = rnd.random() * 6
    for k in range(0, CARD_H + 40, 9):
        points = [(x, k + 6 * math.sin(x / 37 + phase + k / 50)) for x in range(0, CARD_W + 10, 10)]
        draw.line(points, fill=(214, 224, 228), width=1)
    return card


LABEL = (70, 118, 160)
INK = (24, 24, 28)


def render_front(person: Person, rnd: random.Random) -> Image.Image:
    card = _card_base(rnd)
    draw = ImageDraw.Draw(card)
    lx, vx = 62, 170
    draw.text((lx, 72), "姓  名", font=font(30), fill=LABEL)
    draw.text((vx, 68), person.name, font=font(36), fill=INK)
    draw.text((lx, 150), "性  别", font=font(30), fill=LABEL)
    draw.text((vx, 146), person.sex, font=font(34), fill=INK)
    draw.text((320, 150), "民  族", font=font(30), fill=LABEL)
    draw.text((428, 146), person.ethnicity, font=font(34), fill=INK)
    draw.text((lx, 226), "出  生", font=font(30), fill=LABEL)
    b = person.birth
    x = vx
    for part, unit in ((str(b.year), "年"), (str(b.month), "月"), (str(b.day), "日")):
        draw.text((x, 222), part, font=font(34), fill=INK)
        x += font(34).getlength(part) + 10
        draw.text((x, 226), unit, font=font(30), fill=LABEL)
        x += 48
    draw.text((lx, 304), "住  址", font=font(30), fill=LABEL)
    per_line = 11
    lines = [person.address[i : i + per_line] for i in range(0, len(person.address), per_line)]
    for i, line in enumerate(lines[:3]):
        draw.text((vx, 300 + 46 * i), line, font=font(34), fill=INK)
    draw.text((lx, 520), "公民身份号码", font=font(30), fill=LABEL)
    _spaced(draw, (300, 514), person.id_number, 38, INK, gap=5)
    # the photo: a grey figure in a box
    draw.rectangle((650, 70, 920, 420), fill=(212, 218, 222))
    draw.ellipse((725, 120, 845, 260), fill=(150, 150, 156))
    draw.rounded_rectangle((690, 270, 880, 420), radius=60, fill=(120, 124, 132))
    return _round(card)


def validity_text(person: Person) -> str:
    start = f"{person.valid_from:%Y.%m.%d}"
    end = "长期" if person.valid_until is None else f"{person.valid_until:%Y.%m.%d}"
    return f"{start}-{end}"


def render_back(person: Person, rnd: random.Random) -> Image.Image:
    card = _card_base(rnd)
    draw = ImageDraw.Draw(card)
    # the national emblem: a red disc with a ring of stars (a placeholder, not the emblem)
    draw.ellipse((70, 50, 230, 210), fill=(200, 40, 40))
    draw.ellipse((100, 80, 200, 180), outline=(240, 200, 60), width=6)
    for k in range(5):
        a = -math.pi / 2 + k * 2 * math.pi / 5
        cx, cy = 150 + 30 * math.cos(a), 130 + 30 * math.sin(a)
        draw.regular_polygon((cx, cy, 8), 5, fill=(240, 200, 60))
    _spaced(draw, (300, 80), "中华人民共和国", 46, INK, gap=14)
    _spaced(draw, (300, 170), "居民身份证", 76, INK, gap=22)
    draw.text((170, 430), "签发机关", font=font(30), fill=LABEL)
    draw.text((330, 426), person.authority, font=font(34), fill=INK)
    draw.text((170, 510), "有效期限", font=font(30), fill=LABEL)
    draw.text((330, 506), validity_text(person), font=font(34), fill=INK)
    return _round(card)


HUKOU_ROWS = (
    ("户主或与户主关系", "relation", "曾用名", ""),
    ("姓名", "name", "性别", "sex"),
    ("出生地", "birthplace", "民族", "ethnicity"),
    ("籍贯", "birthplace", "出生日期", "birth"),
    ("本市(县)其他住址", "", "宗教信仰", ""),
    ("公民身份证件编号", "id", "身高", ""),
    ("文化程度", "edu", "婚姻状况", "married"),
    ("服务处所", "", "职业", "job"),
    ("何时由何地迁来本市(县)", "", "", ""),
)


def render_hukou(person: Person, rnd: random.Random) -> Image.Image:
    """A page of the household register (常住人口登记卡), simplified: a ruled table."""
    w, h = 1000, 1300
    page = Image.new("RGB", (w, h), (246, 240, 226))
    draw = ImageDraw.Draw(page)
    _spaced(draw, (300, 50), "常住人口登记卡", 44, (150, 40, 40), gap=8)
    top, left, right = 150, 50, w - 50
    row_h = 110
    cols = (left, 290, 610, 750, right)
    values = {
        "relation": rnd.choice(("户主", "妻", "子", "女", "母")),
        "name": person.name,
        "sex": person.sex,
        "ethnicity": person.ethnicity,
        "birthplace": person.address[: person.address.index("市") + 1],
        "birth": f"{person.birth.year}年{person.birth.month}月{person.birth.day}日",
        "id": person.id_number,
        "edu": rnd.choice(("小学", "初中", "高中", "大学")),
        "married": rnd.choice(("已婚", "未婚")),
        "job": rnd.choice(("农民", "务工", "个体")),
    }
    for r, (l1, k1, l2, k2) in enumerate(HUKOU_ROWS):
        y = top + r * row_h
        draw.line([(left, y), (right, y)], fill=(150, 60, 60), width=2)
        draw.text((cols[0] + 10, y + 38), l1, font=font(24), fill=(150, 60, 60))
        if k1:
            size = 30 if k1 != "id" else 26
            draw.text((cols[1] + 10, y + 36), values[k1], font=font(size), fill=INK)
        if l2:
            draw.text((cols[2] + 10, y + 38), l2, font=font(24), fill=(150, 60, 60))
        if k2:
            draw.text((cols[3] + 10, y + 36), values[k2], font=font(30), fill=INK)
    bottom = top + len(HUKOU_ROWS) * row_h
    draw.line([(left, bottom), (right, bottom)], fill=(150, 60, 60), width=2)
    for x in (left, right):
        draw.line([(x, top), (x, bottom)], fill=(150, 60, 60), width=2)
    for x in cols[1:4]:
        draw.line([(x, top), (x, bottom - row_h)], fill=(150, 60, 60), width=1)
    draw.text((left, bottom + 40), "承办人签章", font=font(24), fill=(150, 60, 60))
    draw.text((w - 360, bottom + 40), "登记日期", font=font(24), fill=(150, 60, 60))
    return page


OTHER_TEXTS = (
    ("证明", "兹证明我村村民{name}，常年在本村居住，家庭生活困难，情况属实，特此证明。"),
    ("收据", "今收到{name}交来合作医疗个人缴费叁佰捌拾元整，经办人签字盖章。"),
    ("通知", "请{name}同志于本周五上午到镇便民服务中心办理有关手续，带好相关材料。"),
)


DISABILITIES = ("视力", "听力", "言语", "肢体", "智力", "精神", "多重")  # 残疾类别, codes 1-7
GRADES = ("一级", "二级", "三级", "四级")
BANKS = (("中国农业银行", "622848"), ("中国邮政储蓄银行", "621799"), ("农村商业银行", "623059"))


def luhn_digit(body: str) -> str:
    """The Luhn check digit of a card number's other digits (ISO/IEC 7812)."""
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def add_disability(person: Person, rnd: random.Random) -> None:
    person.disability_category = rnd.choice(DISABILITIES)
    person.disability_grade = rnd.choice(GRADES)


def add_account(person: Person, rnd: random.Random, *, invalid: bool = False) -> None:
    person.bank, prefix = rnd.choice(BANKS)
    body = prefix + "".join(str(rnd.randint(0, 9)) for _ in range(12))
    check = luhn_digit(body)
    if invalid:
        check = rnd.choice([c for c in "0123456789" if c != check])
    person.account_number, person.account_valid = body + check, not invalid


def disability_number(person: Person) -> str:
    """残疾人证号: the ID number, then the category's code (1-7) and the grade (1-4)."""
    category = DISABILITIES.index(person.disability_category) + 1
    return f"{person.id_number}{category}{GRADES.index(person.disability_grade) + 1}"


def render_disability(person: Person, rnd: random.Random) -> Image.Image:
    """The disability certificate's card (残疾人证), simplified: its labels and a photo."""
    card = _card_base(rnd)
    draw = ImageDraw.Draw(card)
    _spaced(draw, (150, 40), "中华人民共和国残疾人证", 44, (40, 90, 60), gap=6)
    lx, vx = 62, 200
    draw.text((lx, 140), "姓  名", font=font(30), fill=LABEL)
    draw.text((vx, 136), person.name, font=font(36), fill=INK)
    draw.text((lx, 210), "性  别", font=font(30), fill=LABEL)
    draw.text((vx, 206), person.sex, font=font(34), fill=INK)
    draw.text((lx, 280), "残疾类别", font=font(30), fill=LABEL)
    draw.text((vx, 276), person.disability_category, font=font(34), fill=INK)
    draw.text((lx, 350), "残疾等级", font=font(30), fill=LABEL)
    draw.text((vx, 346), person.disability_grade, font=font(34), fill=INK)
    draw.text((lx, 430), "证  号", font=font(30), fill=LABEL)
    _spaced(draw, (vx, 426), disability_number(person), 34, INK, gap=3)
    until = "长期" if person.valid_until is None else f"{person.valid_until:%Y年%m月%d日}"
    draw.text((lx, 510), "有效期至", font=font(30), fill=LABEL)
    draw.text((vx, 506), until, font=font(34), fill=INK)
    draw.rectangle((700, 120, 920, 400), fill=(212, 218, 222))
    draw.ellipse((760, 160, 860, 270), fill=(150, 150, 156))
    draw.rounded_rectangle((730, 280, 890, 400), radius=50, fill=(120, 124, 132))
    return _round(card)


def render_bank_card(person: Person, rnd: random.Random) -> Image.Image:
    """A debit card's face: the bank, 借记卡, the number in groups of four, 银联."""
    card = Image.new("RGB", (CARD_W, CARD_H), (30, 110, 90))
    draw = ImageDraw.Draw(card)
    for y in range(CARD_H):
        draw.line([(0, y), (CARD_W, y)], fill=(30, int(110 + 40 * y / CARD_H), 90))
    draw.text((60, 50), person.bank, font=font(44), fill=(250, 250, 250))
    draw.text((60, 120), "借记卡", font=font(30), fill=(235, 235, 235))
    draw.rounded_rectangle((80, 200, 200, 290), radius=12, fill=(214, 186, 100))  # chip
    groups = [person.account_number[i : i + 4] for i in range(0, len(person.account_number), 4)]
    _spaced(draw, (60, 360), " ".join(groups), 52, (252, 252, 252), gap=4)
    draw.rectangle((760, 500, 960, 600), fill=(230, 230, 230))
    draw.text((790, 506), "银联", font=font(40), fill=(200, 30, 40))
    draw.text((778, 556), "UnionPay", font=font(28), fill=(20, 60, 140))
    return _round(card)


def render_passbook(person: Person, rnd: random.Random) -> Image.Image:
    """The first page of a savings passbook (存折): the bank, 户名, 账号, 开户日期."""
    w, h = 1000, 700
    page = Image.new("RGB", (w, h), (238, 242, 236))
    draw = ImageDraw.Draw(page)
    draw.text((80, 50), f"{person.bank}活期储蓄存折", font=font(42), fill=(40, 100, 70))
    rows = (
        ("户名", person.name),
        ("账号", person.account_number),
        ("开户日期", f"{person.valid_from:%Y年%m月%d日}"),
        ("开户网点", person.address[: person.address.index("镇") + 1].split("市")[-1] + "营业所"),
    )
    for i, (label, value) in enumerate(rows):
        y = 170 + 110 * i
        draw.line([(60, y + 80), (w - 60, y + 80)], fill=(150, 170, 150), width=2)
        draw.text((80, y + 20), label, font=font(30), fill=LABEL)
        draw.text((260, y + 16), value, font=font(36), fill=INK)
    return page


def render_other(person: Person, rnd: random.Random) -> Image.Image:
    """Some other paper: a village committee's certificate, a receipt, a notice."""
    w, h = 1000, 1300
    page = Image.new("RGB", (w, h), (244, 244, 240))
    draw = ImageDraw.Draw(page)
    title, body = rnd.choice(OTHER_TEXTS)
    _spaced(draw, (420, 80), title, 56, INK, gap=20)
    text = body.format(name=person.name)
    per_line = 22
    for i in range(0, len(text), per_line):
        draw.text((80, 220 + (i // per_line) * 64), text[i : i + per_line], font=font(36), fill=INK)
    town = person.address[: person.address.index("镇") + 1]
    draw.text((560, 700), town.split("市")[-1] + "村民委员会", font=font(32), fill=INK)
    draw.text(
        (600, 760),
        f"{ON_DATE.year}年{rnd.randint(1, 11)}月{rnd.randint(1, 28)}日",
        font=font(32),
        fill=INK,
    )
    draw.ellipse((600, 640, 820, 860), outline=(210, 50, 50), width=6)
    return page


def _round(card: Image.Image) -> Image.Image:
    mask = Image.new("L", card.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        (0, 0, card.width - 1, card.height - 1), radius=36, fill=255
    )
    out = Image.new("RGBA", card.size)
    out.paste(card, (0, 0), mask)
    return out


# --------------------------------------------------------------------------- photographing


@dataclass(frozen=True)
class Spoil:
    turn: float  # degrees, either way
    perspective: float  # of the document's size, each corner
    blur: tuple[float, float]
    noise: float
    quality: tuple[int, int]
    width: tuple[float, float]  # the document's width over the frame's


SPOILS = {
    "none": Spoil(1, 0.01, (0, 0), 3, (92, 92), (0.75, 0.85)),
    "moderate": Spoil(5, 0.04, (0.6, 1.2), 5, (55, 75), (0.60, 0.80)),
    "heavy": Spoil(12, 0.08, (1.8, 2.6), 9, (25, 40), (0.45, 0.60)),
}


def photograph(document: Image.Image, level: str, rnd: random.Random) -> bytes:
    """The document as a phone photographs it on a table, spoilt at `level`."""
    spoil = SPOILS[level]
    frame = _table(rnd)
    doc = document.convert("RGBA")
    # a portrait page is taken in portrait, scaled so it fits the frame's height
    portrait = doc.height > doc.width
    fw, fh = (FRAME_H, FRAME_W) if portrait else (FRAME_W, FRAME_H)
    if portrait:
        frame = frame.transpose(Image.Transpose.ROTATE_90)
    share = rnd.uniform(*spoil.width)
    width = share * fw if not portrait else share * fw * 0.95
    scale = min(width / doc.width, 0.92 * fh / doc.height)
    w, h = doc.width * scale, doc.height * scale
    cx = fw / 2 + rnd.uniform(-1, 1) * (fw - w) * 0.3
    cy = fh / 2 + rnd.uniform(-1, 1) * (fh - h) * 0.3
    low = spoil.turn / 2.5 if level != "none" else 0
    angle = math.radians(rnd.choice((-1, 1)) * rnd.uniform(low, spoil.turn))
    corners = []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        px = sx * w / 2 + rnd.uniform(-1, 1) * spoil.perspective * w
        py = sy * h / 2 + rnd.uniform(-1, 1) * spoil.perspective * h
        corners.append(
            (
                cx + px * math.cos(angle) - py * math.sin(angle),
                cy + px * math.sin(angle) + py * math.cos(angle),
            )
        )
    source = [(0, 0), (doc.width, 0), (doc.width, doc.height), (0, doc.height)]
    coeffs = _perspective(corners, source)
    warped = doc.transform((fw, fh), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC)
    # a faint shadow under the document
    shadow = Image.new("L", (fw, fh), 0)
    ImageDraw.Draw(shadow).polygon([(x + 6, y + 8) for x, y in corners], fill=90)
    shadow = shadow.filter(ImageFilter.GaussianBlur(10))
    frame = Image.composite(Image.new("RGB", (fw, fh), (30, 24, 20)), frame, shadow)
    frame.paste(warped, (0, 0), warped)
    frame = _light(frame, level, rnd, corners)
    radius = rnd.uniform(*spoil.blur)
    if radius:
        frame = frame.filter(ImageFilter.GaussianBlur(radius))
    # camera noise from the seeded generator (Image.effect_noise draws from its own)
    grain = Image.frombytes("L", (fw, fh), rnd.randbytes(fw * fh)).convert("RGB")
    frame = Image.blend(frame, grain, spoil.noise / 100)
    out = io.BytesIO()
    frame.save(out, "JPEG", quality=rnd.randint(*spoil.quality))
    return out.getvalue()


def _table(rnd: random.Random) -> Image.Image:
    base = rnd.choice(((120, 92, 66), (150, 132, 110), (90, 96, 104), (170, 160, 150)))
    table = Image.new("RGB", (FRAME_W, FRAME_H), base)
    draw = ImageDraw.Draw(table)
    for _ in range(60):  # wood grain
        y = rnd.randint(0, FRAME_H)
        tone = tuple(max(0, c - rnd.randint(5, 18)) for c in base)
        draw.line([(0, y), (FRAME_W, y + rnd.randint(-40, 40))], fill=tone, width=rnd.randint(1, 4))
    return table.filter(ImageFilter.GaussianBlur(1.5))


def _light(
    frame: Image.Image, level: str, rnd: random.Random, corners: list[tuple[float, float]]
) -> Image.Image:
    w, h = frame.size
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]

    def glare(strength: float, radius: float) -> Image.Image:
        spot = Image.new("L", (w, h), 0)
        gx = rnd.uniform(min(xs), max(xs))
        gy = rnd.uniform(min(ys), max(ys))
        ImageDraw.Draw(spot).ellipse(
            (gx - radius, gy - radius * 0.7, gx + radius, gy + radius * 0.7),
            fill=int(255 * strength),
        )
        spot = spot.filter(ImageFilter.GaussianBlur(radius / 3))
        return Image.composite(Image.new("RGB", (w, h), (255, 255, 250)), frame, spot)

    if level == "none":
        return frame
    if level == "moderate":
        choice = rnd.choice(("dim", "glare", "uneven"))
        if choice == "dim":
            return _dim(frame, rnd.uniform(0.55, 0.75))
        if choice == "glare":
            return glare(rnd.uniform(0.45, 0.6), (max(xs) - min(xs)) * rnd.uniform(0.10, 0.16))
        shade = Image.linear_gradient("L").resize((w, h)).rotate(rnd.choice((0, 90, 180, 270)))
        dark = Image.eval(frame, lambda v: int(v * 0.5))
        return Image.composite(dark, frame, shade.point(lambda v: int(v * 0.8)))
    frame = glare(rnd.uniform(0.8, 0.95), (max(xs) - min(xs)) * rnd.uniform(0.18, 0.26))
    return _dim(frame, rnd.uniform(0.30, 0.45))


def _dim(frame: Image.Image, factor: float) -> Image.Image:
    return frame.point([int(v * factor) for v in range(256)] * 3)


def _perspective(dst: list[tuple[float, float]], src: list[tuple[float, float]]) -> list[float]:
    """Pillow's PERSPECTIVE coefficients taking output points `dst` to input points `src`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rhs.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.append(v)
    return _solve(rows, rhs)


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][n] / m[i][i] for i in range(n)]


# --------------------------------------------------------------------------- the set

MIX = (  # per 20 samples of a level
    ("id_card_front", 8),
    ("id_card_back", 8),
    ("hukou_page", 2),
    ("other", 2),
    ("disability_card", 2),
    ("bank_card", 2),
    ("passbook", 1),
)


def samples(
    seed: int = 2026, per_level: int = 100, levels: tuple[str, ...] = LEVELS
) -> Iterator[Sample]:
    """The set: `per_level` photos at each level (of each 25: 8 fronts, 8 backs, 2 household
    register pages, 2 other papers, 2 disability certificates, 2 bank cards, 1 passbook);
    about one number in six has a wrong check digit (fronts, cards), about one back in three
    and one disability certificate in three have expired. The same seed, the same set."""
    kinds = [k for k, n in MIX for _ in range(n)]
    for level in levels:
        rnd = random.Random(f"{seed}:{level}")
        for i in range(per_level):
            kind = kinds[i % len(kinds)]
            yield make_sample(kind, level, rnd, f"{level}-{kind}-{i:03d}")


def make_sample(
    kind: str,
    level: str,
    rnd: random.Random,
    name: str = "",
    *,
    invalid: bool | None = None,
    expired: bool | None = None,
) -> Sample:
    """One photo of `kind` at `level`; its number wrong (`invalid`, fronts) and its period
    over (`expired`, backs) as given, or by chance (one in six, one in three)."""
    chance_invalid = kind in ("id_card_front", "bank_card") and rnd.random() < 1 / 6
    chance_expired = kind in ("id_card_back", "disability_card") and rnd.random() < 1 / 3
    invalid = chance_invalid if invalid is None else invalid
    expired = chance_expired if expired is None else expired
    person = make_person(rnd, invalid=invalid and kind == "id_card_front", expired=expired)
    if kind == "disability_card":
        add_disability(person, rnd)
    if kind in ("bank_card", "passbook"):
        add_account(person, rnd, invalid=invalid and kind == "bank_card")
    draw = {
        "id_card_front": render_front,
        "id_card_back": render_back,
        "hukou_page": render_hukou,
        "other": render_other,
        "disability_card": render_disability,
        "bank_card": render_bank_card,
        "passbook": render_passbook,
    }[kind]
    image = photograph(draw(person, rnd), level, rnd)
    return Sample(name or f"{level}-{kind}", kind, level, image, person, person.expired_on(ON_DATE))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("var/prereview-set"))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--per-level", type=int, default=100)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    labels = []
    for s in samples(args.seed, args.per_level):
        (args.out / f"{s.name}.jpg").write_bytes(s.image)
        person = asdict(s.person) if s.person else None
        labels.append(
            {
                "file": f"{s.name}.jpg",
                "kind": s.kind,
                "level": s.level,
                "expired": s.expired,
                "person": person,
            }
        )
    (args.out / "labels.json").write_text(
        json.dumps(labels, ensure_ascii=False, indent=1, default=str), encoding="utf-8"
    )
    print(f"{len(labels)} photos in {args.out}")


if __name__ == "__main__":
    main()
