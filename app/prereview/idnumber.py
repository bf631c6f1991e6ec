"""Citizen identity numbers (公民身份号码, GB 11643-1999): the check character, the parts, and
the repair of one misread character when only one repair fits.

An identity number is 18 characters: a six-digit address code (the county of first
registration), the birth date as YYYYMMDD, a three-digit sequence (odd for men, even for
women) and a check character: the weighted sum of the first 17 digits, weights 2^(17-i)
mod 11, taken mod 11, mapped through "10X98765432".
"""

from __future__ import annotations

from datetime import date
from typing import Final

WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS: Final = "10X98765432"
# The first two digits: the provinces, autonomous regions and municipalities (GB/T 2260),
# with Taiwan (71), Hong Kong (81), Macao (82) and 83 (residence permits of Taiwan residents).
PROVINCES: Final = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
)
# What the recogniser confuses in printed digits (OCR-B-like faces on a photo): each digit
# with those it is read as. Used only to repair, never to accept a number as read.
CONFUSABLE: Final[dict[str, str]] = {
    "0": "869",
    "1": "74",
    "2": "7",
    "3": "85",
    "4": "1",
    "5": "63",
    "6": "580",
    "7": "12",
    "8": "3690",
    "9": "80",
    "X": "",
}


def check_char(first17: str) -> str:
    """The check character of the first 17 digits (GB 11643)."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("17 digits expected")
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def is_valid(number: str) -> bool:
    """18 characters, the check character right (the birth date and the province are not
    looked at: `is_plausible` does)."""
    return (
        len(number) == 18
        and number[:17].isdigit()
        and number[17] in "0123456789X"
        and check_char(number[:17]) == number[17]
    )


def birth_date(number: str) -> date | None:
    """The birth date inside a number, or None if those digits are not a date."""
    digits = number[6:14]
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def sex(number: str) -> str | None:
    """男 or 女 from the 17th digit (odd: a man)."""
    if len(number) < 17 or not number[16].isdigit():
        return None
    return "男" if int(number[16]) % 2 else "女"


def is_plausible(number: str, *, born: date | None = None, today: date | None = None) -> bool:
    """Valid, of a province that exists, born on a real day after 1890 and not in the
    future; and on `born` when that is known from elsewhere on the card."""
    if not is_valid(number) or int(number[:2]) not in PROVINCES:
        return False
    day = birth_date(number)
    if day is None or day.year < 1890 or (today is not None and day > today):
        return False
    return born is None or day == born


def repair(number: str, *, born: date | None = None, today: date | None = None) -> str | None:
    """The one number that a single misread character would have become, or None.

    Every character is tried against the digits it is commonly misread for (CONFUSABLE),
    and the check character against every other: a repair must make the whole number
    plausible (a province, a real birth date, the card's own birth date if it was read).
    If no repair or more than one fits, None: a guess between two numbers is not made."""
    if len(number) != 18 or not number[:17].isdigit() or number[17] not in "0123456789X":
        return None
    if is_valid(number):
        return None
    found: set[str] = set()
    # The check character itself: the right one for the 17 digits as read.
    first17 = number[:17]
    candidate = first17 + check_char(first17)
    if is_plausible(candidate, born=born, today=today):
        found.add(candidate)
    for i in range(17):
        for replacement in CONFUSABLE[number[i]]:
            candidate = number[:i] + replacement + number[i + 1 :]
            if is_plausible(candidate, born=born, today=today):
                found.add(candidate)
    return found.pop() if len(found) == 1 else None
