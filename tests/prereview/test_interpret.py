"""From the recogniser's lines to fields, without the recogniser: rows rebuilt from tilted
boxes, labels and values in separate boxes or one, look-alike letters in the number."""

from __future__ import annotations

import math
from datetime import date

from app.prereview import OcrLine, interpret


def line(
    text: str, x: float, y: float, *, width: float = 0, tilt: float = 0.0, score: float = 0.97
) -> OcrLine:
    """A box of `text` 30 px high at (x, y), turned by `tilt` degrees round (0, 0)."""
    width = width or 32 * len(text)
    a = math.radians(tilt)
    corners = [(x, y), (x + width, y), (x + width, y + 30), (x, y + 30)]
    turned = tuple(
        (cx * math.cos(a) - cy * math.sin(a), cx * math.sin(a) + cy * math.cos(a))
        for cx, cy in corners
    )
    return OcrLine(text, score, turned)


def card(tilt: float) -> list[OcrLine]:
    return [
        line("姓名", 60, 70, tilt=tilt),
        line("韩俊英", 170, 68, tilt=tilt),
        line("性别", 60, 150, tilt=tilt),
        line("女", 170, 146, tilt=tilt),
        line("民族", 320, 150, tilt=tilt),
        line("土家", 428, 146, tilt=tilt),
        line("出生1982年11月27日", 60, 226, tilt=tilt),
        line("住址", 60, 304, tilt=tilt),
        line("湖南省岳阳市岳阳县前桥", 170, 300, tilt=tilt),
        line("镇下河村幸福路41号", 170, 346, tilt=tilt),
        line("公民身份号码", 60, 520, tilt=tilt),
        line("5lO722l982ll277863", 300, 514, tilt=tilt),  # l for 1, O for 0
    ]


def test_a_front_in_separate_boxes_tilted_either_way() -> None:
    for tilt in (-8.0, 0.0, 6.0):
        reading = interpret(card(tilt))
        assert reading.kind == "id_card_front", tilt
        assert reading.name == "韩俊英"
        assert (reading.sex, reading.ethnicity) == ("女", "土家")
        assert reading.birth == date(1982, 11, 27)
        assert reading.address == "湖南省岳阳市岳阳县前桥镇下河村幸福路41号"
        assert reading.id_number == "510722198211277863"
        assert reading.id_number_valid


def test_the_back_with_a_long_term_period() -> None:
    reading = interpret(
        [
            line("中华人民共和国", 300, 80),
            line("居民身份证", 300, 170),
            line("签发机关绵阳市公安局三台分局", 170, 430),
            line("有效期限2023.09.22-长期", 170, 510),
        ]
    )
    assert reading.kind == "id_card_back"
    assert reading.authority == "绵阳市公安局三台分局"
    assert (reading.valid_from, reading.valid_until, reading.long_term) == (
        date(2023, 9, 22),
        None,
        True,
    )
    dated = interpret(
        [
            line("居民身份证", 300, 170),
            line("签发机关", 170, 430),
            line("枣庄市公安局山亭分局", 330, 426),
            line("有效期限", 170, 510),
            line("2015.03.08一2035.03.08", 330, 506),  # the dash read as 一
        ]
    )
    assert dated.kind == "id_card_back"
    assert dated.authority == "枣庄市公安局山亭分局"
    assert (dated.valid_from, dated.valid_until) == (date(2015, 3, 8), date(2035, 3, 8))


def test_a_register_page_is_not_taken_for_a_front() -> None:
    reading = interpret(
        [
            line("常住人口登记卡", 300, 50),
            line("户主或与户主关系", 60, 150),
            line("户主", 300, 150),
            line("曾用名", 620, 150),
            line("姓名", 60, 260),
            line("夏立诗", 300, 260),
            line("性别", 620, 260),
            line("男", 760, 260),
            line("出生地", 60, 370),
            line("民族", 620, 370),
            line("籍贯", 60, 480),
            line("出生日期", 620, 480),
            line("公民身份证件编号", 60, 700),
            line("130681195603247110", 300, 700),
        ]
    )
    assert reading.kind == "hukou_page"
    assert (reading.name, reading.id_number) == ("夏立诗", "130681195603247110")


def test_running_text_with_a_number_is_another_paper() -> None:
    reading = interpret(
        [
            line("证明", 420, 80),
            line("兹证明我村村民韩俊英身份证号码510722198211277863", 80, 220),
            line("常年在本村居住，家庭生活困难，情况属实，特此证明。", 80, 284),
            line("岳阳县前桥镇下河村村民委员会", 560, 700),
            line("2026年9月15日", 600, 760),
        ]
    )
    assert reading.kind == "other"


def test_too_little_text_is_unreadable() -> None:
    assert interpret([]).kind == "unreadable"
    assert interpret([line("8", 10, 10), line("民", 50, 50)]).kind == "unreadable"


def test_a_misread_number_is_repaired_only_when_the_recogniser_was_unsure() -> None:
    lines = card(0.0)[:-1]  # born 1982-11-27, printed number 510722198211277863
    misread = "510722198211277868"  # the last 3 read as 8: the check character
    sure = interpret([*lines, line(misread, 300, 514, score=0.99)])
    assert (sure.id_number, sure.id_number_valid, sure.id_number_repaired) == (
        misread,
        False,
        False,
    )
    unsure = interpret([*lines, line(misread, 300, 514, score=0.8)])
    assert (unsure.id_number, unsure.id_number_valid, unsure.id_number_repaired) == (
        "510722198211277863",
        True,
        True,
    )
