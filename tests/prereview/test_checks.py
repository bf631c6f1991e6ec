"""Findings from readings (no recogniser needed): codes and hints."""

from __future__ import annotations

from datetime import date

import pytest

from app.prereview import Reading, check
from app.prereview.checks import MESSAGES

TODAY = date(2026, 12, 1)
NUMBER = "370406195603081222"
OTHER = "41052219860524733X"


def front(**fields: object) -> Reading:
    values: dict[str, object] = {
        "status": "read",
        "kind": "id_card_front",
        "confidence": 0.9,
        "name": "王秀兰",
        "id_number": NUMBER,
        "id_number_valid": True,
    }
    values.update(fields)
    return Reading(**values)  # type: ignore[arg-type]


def back(**fields: object) -> Reading:
    values: dict[str, object] = {
        "status": "read",
        "kind": "id_card_back",
        "confidence": 0.9,
        "authority": "枣庄市公安局山亭分局",
        "valid_from": date(2015, 3, 8),
        "valid_until": date(2035, 3, 8),
    }
    values.update(fields)
    return Reading(**values)  # type: ignore[arg-type]


def codes(reading: Reading, expected: str = "id_card_front", number: str | None = NUMBER):
    return [f.code for f in check(reading, expected, number, TODAY)]  # type: ignore[arg-type]


def test_a_good_front_and_back_have_no_findings() -> None:
    assert check(front(), "id_card_front", NUMBER, TODAY) == []
    assert check(front(), "id_card_front", None, TODAY) == []
    assert check(back(), "id_card_back", None, TODAY) == []
    assert check(back(valid_until=None, long_term=True), "id_card_back", None, TODAY) == []


def test_the_wrong_side_says_which_side_is_needed() -> None:
    [finding] = check(back(), "id_card_front", NUMBER, TODAY)
    assert (finding.code, finding.message) == ("wrong_side", "这张像是身份证反面，这里需要正面")
    [finding] = check(front(), "id_card_back", NUMBER, TODAY)
    assert (finding.code, finding.message) == ("wrong_side", "这张像是身份证正面，这里需要反面")


@pytest.mark.parametrize(
    ("kind", "expected", "message"),
    [
        ("hukou_page", "id_card_front", "这张像是户口簿，这里需要身份证正面（有照片的一面）"),
        ("other", "id_card_back", "这张不像身份证反面，请拍身份证反面（有国徽的一面）"),
        ("id_card_front", "hukou_page", "这张像是身份证正面，这里需要户口簿本人页"),
    ],
)
def test_another_document(kind: str, expected: str, message: str) -> None:
    [finding] = check(front(kind=kind), expected, NUMBER, TODAY)  # type: ignore[arg-type]
    assert (finding.code, finding.message) == ("wrong_document", message)


def test_an_unreadable_photo() -> None:
    [finding] = check(front(kind="unreadable"), "id_card_front", NUMBER, TODAY)
    assert (finding.code, finding.message) == ("unreadable", "照片看不清，请重拍")


def test_expired_on_the_day_after_its_last_day() -> None:
    card = back(valid_from=date(2006, 12, 1), valid_until=date(2026, 12, 1))
    assert check(card, "id_card_back", None, date(2026, 12, 1)) == []
    [finding] = check(card, "id_card_back", None, date(2026, 12, 2))
    assert (finding.code, finding.message) == ("expired", "证件已过期")


def test_a_back_without_its_period_read() -> None:
    assert codes(back(valid_until=None), "id_card_back", None) == ["validity_unread"]


def test_someone_elses_number() -> None:
    [finding] = check(front(id_number=OTHER), "id_card_front", NUMBER, TODAY)
    assert (finding.code, finding.message) == ("id_number_mismatch", "照片上的号码与本人不一致")
    # the expected number as typed: lower-case x and spaces round it are the same number
    assert codes(front(id_number=OTHER), number=f" {OTHER.lower()} ") == []


def test_an_invalid_number_one_character_off_is_called_invalid_not_anothers() -> None:
    misread = NUMBER[:10] + "9" + NUMBER[11:]
    assert codes(front(id_number=misread, id_number_valid=False)) == ["id_number_invalid"]
    # far from the expected number: both
    assert codes(front(id_number=OTHER[:17] + "1", id_number_valid=False)) == [
        "id_number_invalid",
        "id_number_mismatch",
    ]


def test_a_front_without_its_number_read() -> None:
    assert codes(front(id_number=None, id_number_valid=None)) == ["id_number_unread"]


def test_not_reviewed_is_said_and_is_information_only() -> None:
    reading = Reading(status="engine_missing", kind=None, confidence=0.0, note="未预审")
    [finding] = check(reading, "id_card_front", NUMBER, TODAY)
    assert (finding.code, finding.severity) == ("engine_missing", "info")
    assert "未预审" in finding.message


def test_every_code_has_a_chinese_hint() -> None:
    assert all(any("\u4e00" <= c <= "\u9fff" for c in m) for m in MESSAGES.values())


def card(**fields: object) -> Reading:
    values: dict[str, object] = {
        "status": "read",
        "kind": "bank_card",
        "confidence": 0.8,
        "account_number": "6228480402564890018",
        "account_number_valid": True,
    }
    values.update(fields)
    return Reading(**values)  # type: ignore[arg-type]


def test_a_bank_card_its_number_read_and_checked() -> None:
    assert codes(card(), "bank_card") == []
    assert codes(card(account_number_valid=False), "bank_card") == ["account_number_invalid"]
    assert codes(card(account_number=None, account_number_valid=None), "bank_card") == [
        "account_number_unread"
    ]
    assert codes(card(), "id_card_front") == ["wrong_document"]


def test_a_passbook_serves_for_a_bank_card_and_its_name_is_compared() -> None:
    book = card(kind="passbook", name="王秀兰", account_number_valid=None)
    assert [f.code for f in check(book, "bank_card", None, TODAY, "王秀兰")] == []
    # one character off is taken as misread, not as another person's
    assert [f.code for f in check(book, "bank_card", None, TODAY, "王秀英")] == []
    assert [f.code for f in check(book, "bank_card", None, TODAY, "李建国")] == ["name_mismatch"]


def test_a_disability_certificate_its_number_and_expiry() -> None:
    certificate = front(kind="disability_card", valid_until=date(2030, 1, 1))
    assert codes(certificate, "disability_card") == []
    assert codes(certificate, "disability_card", OTHER) == ["id_number_mismatch"]
    old = front(kind="disability_card", valid_until=date(2026, 11, 30))
    assert codes(old, "disability_card") == ["expired"]
