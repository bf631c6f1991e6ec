"""GB 11643 identity numbers: the check character, and repairing one misread character."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from app.prereview import check_char, idnumber, is_valid


@pytest.mark.parametrize(
    ("first17", "check"),
    [
        ("11010519491231002", "X"),  # the standard's own example
        ("44052418800101001", "4"),
        ("37040619560308122", "2"),
        ("13068119831218298", "X"),
        ("51072219500726820", "2"),
    ],
)
def test_the_check_character_is_the_standards(first17: str, check: str) -> None:
    assert check_char(first17) == check
    assert is_valid(first17 + check)


def test_every_check_character_is_reached_and_only_one_is_right() -> None:
    seen = set()
    for tail in range(200):
        first17 = f"370406195603{tail:05d}"
        right = check_char(first17)
        seen.add(right)
        assert [c for c in "0123456789X" if is_valid(first17 + c)] == [right]
    assert seen == set("0123456789X")


@pytest.mark.parametrize(
    "number",
    ["11010519491231002x", "1101051949123100X", "110105194912310022X", "11010519491231002Y", ""],
)
def test_malformed_numbers_are_not_valid(number: str) -> None:
    assert not is_valid(number)


def test_check_char_wants_17_digits() -> None:
    with pytest.raises(ValueError):
        check_char("1101051949123100")


def test_parts_of_a_number() -> None:
    assert idnumber.birth_date("11010519491231002X") == date(1949, 12, 31)
    assert idnumber.birth_date("110105194913310020") is None
    assert idnumber.sex("11010519491231002X") == "女"  # 17th digit 2: even
    assert idnumber.sex("110105194912310010") == "男"


def test_one_misread_digit_is_repaired_when_the_printed_birth_date_decides() -> None:
    right = "370406195603081222"
    misread = "370406195603031222"  # the 8 of the day read as 3
    assert not is_valid(misread)
    assert idnumber.repair(misread, born=date(1956, 3, 8)) == right
    # Without the birth date printed beside it, other repairs fit as well: none is made.
    assert idnumber.repair(misread) is None
    # A misread province digit leaves two (it, or the check character): none is made.
    assert idnumber.repair("310406195603081222", born=date(1956, 3, 8)) is None


def test_a_repair_made_is_the_right_number() -> None:
    """Valid numbers with one digit misread for a look-alike (or a wrong check character):
    some are repaired, the others left alone, and every repair made is the right number,
    for the right number is always among the candidates and only a sole candidate is
    taken."""
    rnd = random.Random(11643)
    made = left = 0
    for _ in range(1500):
        born = date(1940, 1, 1) + timedelta(days=rnd.randrange(365 * 60))
        first17 = rnd.choice(("370406", "410522", "130681")) + f"{born:%Y%m%d}"
        first17 += f"{rnd.randrange(1000):03d}"
        right = first17 + check_char(first17)
        i = rnd.randrange(18)
        options = idnumber.CONFUSABLE[right[i]] if i < 17 else "0123456789X".replace(right[17], "")
        if not options:
            continue
        number = right[:i] + rnd.choice(options) + right[i + 1 :]
        if is_valid(number):
            continue
        repaired = idnumber.repair(number, born=born)
        if repaired is None:
            left += 1
        else:
            made += 1
            assert repaired == right, (number, repaired, right)
    assert made > 100 and left > 100


def test_when_two_repairs_fit_none_is_made() -> None:
    misread = "11010519491231062X"  # the 0 of the sequence read as 6
    candidates = [
        c
        for c in (
            misread[:17] + check_char(misread[:17]),  # the check character as misread
            "11010519491231002X",  # the 6 as a misread 0
        )
        if idnumber.is_plausible(c, born=date(1949, 12, 31))
    ]
    assert len(candidates) == 2
    assert idnumber.repair(misread, born=date(1949, 12, 31)) is None


def test_a_valid_or_malformed_number_is_not_repaired() -> None:
    assert idnumber.repair("11010519491231002X") is None
    assert idnumber.repair("1101051949123100") is None
    assert idnumber.repair("11010519491231002Y") is None
