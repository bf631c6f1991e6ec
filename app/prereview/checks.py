"""What a reading means for the material it was given as: findings with stable codes and a
plain Chinese hint for the resident (and the agent).

`check(reading, expected_kind, expected_id_number, on_date, expected_name=None)`:

engine_missing (未预审: nothing was checked, severity info), unreadable, wrong_side,
wrong_document, id_number_unread, id_number_invalid (its GB 11643 check character is wrong),
id_number_mismatch (someone else's card), validity_unread and expired (the back or a
disability certificate, its period ended before `on_date`), account_number_unread,
account_number_invalid (a card's Luhn digit is wrong) and name_mismatch (a passbook's 户名
is not the person's). docs/prereview.md has the table of codes and hints.

A wrong kind is the only finding given for it (its fields say nothing of the material
asked for). Findings are warnings, as the upload's photo checks are: the resident may
still submit, and the agent decides.
"""

from __future__ import annotations

from datetime import date
from typing import Final, Literal

import msgspec

from app.prereview.reading import DocumentKind, Reading

ExpectedKind = Literal[
    "id_card_front", "id_card_back", "hukou_page", "disability_card", "bank_card"
]
FindingCode = Literal[
    "engine_missing",
    "unreadable",
    "wrong_side",
    "wrong_document",
    "id_number_unread",
    "id_number_invalid",
    "id_number_mismatch",
    "validity_unread",
    "expired",
    "account_number_unread",
    "account_number_invalid",
    "name_mismatch",
]

MESSAGES: Final[dict[FindingCode, str]] = {
    "engine_missing": "未预审",
    "unreadable": "照片看不清，请重拍",
    "wrong_side": "这张像是身份证反面，这里需要正面",
    "wrong_document": "这张不是所需的证件，请重拍",
    "id_number_unread": "没看清身份证号码，请重拍清楚一些",
    "id_number_invalid": "照片上的身份证号码不对，请核对或重拍",
    "id_number_mismatch": "照片上的号码与本人不一致",
    "validity_unread": "没看清有效期限，请重拍清楚一些",
    "expired": "证件已过期",
    "account_number_unread": "没看清卡号或账号，请重拍清楚一些",
    "account_number_invalid": "照片上的卡号不对，请核对或重拍",
    "name_mismatch": "存折上的户名与本人不一致",
}
NAMES: Final[dict[DocumentKind, str]] = {
    "id_card_front": "身份证正面",
    "id_card_back": "身份证反面",
    "hukou_page": "户口簿",
    "disability_card": "残疾人证",
    "bank_card": "银行卡",
    "passbook": "存折",
    "other": "",
    "unreadable": "",
}
WANTED: Final[dict[ExpectedKind, str]] = {
    "id_card_front": "身份证正面（有照片的一面）",
    "id_card_back": "身份证反面（有国徽的一面）",
    "hukou_page": "户口簿本人页",
    "disability_card": "残疾人证（有照片的一面）",
    "bank_card": "银行卡正面（有卡号的一面）或存折户名页",
}
# What each material accepts besides itself: a passbook's page serves for a bank card.
ACCEPTS: Final[dict[ExpectedKind, frozenset[DocumentKind]]] = {
    "bank_card": frozenset({"bank_card", "passbook"}),
}


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    code: FindingCode
    message: str
    severity: Literal["warning", "info"] = "warning"


def _finding(code: FindingCode, message: str | None = None) -> Finding:
    severity: Literal["warning", "info"] = "info" if code == "engine_missing" else "warning"
    return Finding(code=code, message=message or MESSAGES[code], severity=severity)


def check(
    reading: Reading,
    expected_kind: ExpectedKind,
    expected_id_number: str | None,
    on_date: date,
    expected_name: str | None = None,
) -> list[Finding]:
    """The findings on a photo given as `expected_kind` of the person whose number is
    `expected_id_number` and name `expected_name` (None: not known), on `on_date`."""
    if reading.status == "engine_missing" or reading.kind is None:
        return [_finding("engine_missing", reading.note or MESSAGES["engine_missing"])]
    kind = reading.kind
    if kind == "unreadable":
        return [_finding("unreadable")]
    if kind != expected_kind and kind not in ACCEPTS.get(expected_kind, ()):
        return [_wrong_kind(kind, expected_kind)]
    found: list[Finding] = []
    if kind in ("id_card_front", "hukou_page", "disability_card"):
        found += _number_findings(reading, expected_id_number)
    if kind == "id_card_back":
        if reading.valid_until is None and not reading.long_term:
            found.append(_finding("validity_unread"))
        elif reading.valid_until is not None and reading.valid_until < on_date:
            found.append(_finding("expired"))
    if kind == "disability_card" and reading.valid_until and reading.valid_until < on_date:
        found.append(_finding("expired"))
    if kind in ("bank_card", "passbook"):
        if reading.account_number is None:
            found.append(_finding("account_number_unread"))
        elif reading.account_number_valid is False:
            found.append(_finding("account_number_invalid"))
        if kind == "passbook" and expected_name and reading.name:
            if _differ(reading.name, expected_name) > 1:
                found.append(_finding("name_mismatch"))
    return found


def _differ(a: str, b: str) -> int:
    """Characters that differ, place by place (a difference in length counts too)."""
    return sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))


def _wrong_kind(kind: DocumentKind, expected: ExpectedKind) -> Finding:
    ids = ("id_card_front", "id_card_back")
    if kind in ids and expected in ids:
        side = {"id_card_front": "正面", "id_card_back": "反面"}
        return _finding("wrong_side", f"这张像是身份证{side[kind]}，这里需要{side[expected]}")
    if kind == "other":
        return _finding("wrong_document", f"这张不像{NAMES[expected]}，请拍{WANTED[expected]}")
    return _finding("wrong_document", f"这张像是{NAMES[kind]}，这里需要{WANTED[expected]}")


def _number_findings(reading: Reading, expected: str | None) -> list[Finding]:
    number = reading.id_number
    if number is None:
        return [_finding("id_number_unread")]
    found = []
    if not reading.id_number_valid:
        found.append(_finding("id_number_invalid"))
    if expected:
        expected = expected.strip().upper()
        differ = _differ(number, expected)
        # A valid number that differs is someone else's; an invalid one that differs in one
        # place only is more likely misread (id_number_invalid says so) than another's.
        if differ and (reading.id_number_valid or differ > 1):
            found.append(_finding("id_number_mismatch"))
    return found
