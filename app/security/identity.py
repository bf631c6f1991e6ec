"""Validation of Chinese resident ID numbers (GB 11643-1999) and phone numbers."""

from __future__ import annotations

import re
from datetime import date

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")


def id_number_check_char(first17: str) -> str:
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def id_number_problem(value: str, *, today: date | None = None) -> str | None:
    """None when valid, else the reason in Chinese (shown to the person who typed it)."""
    if len(value) != 18:
        return "身份证号码应为18位"
    first17, last = value[:17], value[17]
    if not first17.isdigit() or not (last.isdigit() or last == "X"):
        return "身份证号码格式不正确"
    if first17[:2] == "00" or first17[:6] == "000000":
        return "身份证号码的地区码不正确"
    try:
        born = date(int(first17[6:10]), int(first17[10:12]), int(first17[12:14]))
    except ValueError:
        return "身份证号码中的出生日期不存在"
    if born.year < 1900 or born > (today or date.today()):
        return "身份证号码中的出生日期不正确"
    if id_number_check_char(first17) != last:
        return "身份证号码校验位不正确,请核对"
    return None


def normalize_id_number(value: str) -> str:
    return value.strip().upper()


def is_mobile(value: str) -> bool:
    return bool(MOBILE.match(value))


def is_phone(value: str) -> bool:
    """A mobile number or a landline with area code (a station's duty phone)."""
    return bool(MOBILE.match(value) or LANDLINE.match(value))


def birth_date(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def age_on(born: date, day: date) -> int:
    """Full years of age on `day` (a 29 February birthday counts on 1 March)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))
