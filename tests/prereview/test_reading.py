"""Photos drawn by bench/prereview_set.py read with the real recogniser: the kind, the
fields, and the findings a resident would see. (bench/prereview.py measures the same on
hundreds of photos; these are a few, fixed by their seeds.)"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import sys
from datetime import date
from types import ModuleType

import pytest

from app.prereview import Engine, Reading, check, read_document

from .conftest import ROOT

TODAY = date(2026, 12, 1)


@pytest.fixture(scope="module")
def front(drawn: ModuleType, engine: Engine) -> tuple[object, Reading]:
    sample = drawn.make_sample("id_card_front", "none", random.Random(1), invalid=False)
    return sample, read_document(sample.image, engine)


@pytest.fixture(scope="module")
def expired_back(drawn: ModuleType, engine: Engine) -> tuple[object, Reading]:
    sample = drawn.make_sample("id_card_back", "none", random.Random(2), expired=True)
    return sample, read_document(sample.image, engine)


def test_the_front_field_by_field_and_its_findings(front: tuple[object, Reading]) -> None:
    sample, reading = front
    person = sample.person  # type: ignore[attr-defined]
    assert reading.status == "read"
    assert reading.kind == "id_card_front"
    assert reading.confidence >= 0.7
    assert reading.name == person.name
    assert reading.sex == person.sex
    assert reading.ethnicity == person.ethnicity
    assert reading.birth == person.birth
    assert reading.address == person.address
    assert reading.id_number == person.id_number
    assert reading.id_number_valid is True
    assert not reading.id_number_repaired
    assert reading.engine.startswith("rapidocr")
    assert reading.seconds > 0

    # the resident's own card: nothing to say
    assert check(reading, "id_card_front", person.id_number, TODAY) == []
    # someone else's
    [finding] = check(reading, "id_card_front", "41052219860524733X", TODAY)
    assert (finding.code, finding.message) == ("id_number_mismatch", "照片上的号码与本人不一致")
    # given as the back
    [finding] = check(reading, "id_card_back", None, TODAY)
    assert (finding.code, finding.message) == ("wrong_side", "这张像是身份证正面，这里需要反面")


def test_an_expired_back_and_its_findings(expired_back: tuple[object, Reading]) -> None:
    sample, reading = expired_back
    person = sample.person  # type: ignore[attr-defined]
    assert reading.kind == "id_card_back"
    assert reading.authority == person.authority
    assert reading.valid_from == person.valid_from
    assert reading.valid_until == person.valid_until < TODAY
    [finding] = check(reading, "id_card_back", None, TODAY)
    assert (finding.code, finding.message) == ("expired", "证件已过期")
    # given as the front
    [finding] = check(reading, "id_card_front", "370406195603081222", TODAY)
    assert (finding.code, finding.message) == ("wrong_side", "这张像是身份证反面，这里需要正面")


def test_a_moderately_spoilt_front_and_back(drawn: ModuleType, engine: Engine) -> None:
    """Turned a few degrees, in perspective, blurred, dim or glaring, JPEG 55-75."""
    front = drawn.make_sample("id_card_front", "moderate", random.Random(3), invalid=False)
    reading = read_document(front.image, engine)
    assert (reading.kind, reading.name, reading.id_number) == (
        "id_card_front",
        front.person.name,
        front.person.id_number,
    )
    back = drawn.make_sample("id_card_back", "moderate", random.Random(4), expired=False)
    reading = read_document(back.image, engine)
    assert reading.kind == "id_card_back"
    assert (reading.valid_until, reading.long_term) == (
        back.person.valid_until,
        back.person.valid_until is None,
    )
    assert check(reading, "id_card_back", None, TODAY) == []


def test_a_number_printed_with_a_wrong_check_digit(drawn: ModuleType, engine: Engine) -> None:
    sample = drawn.make_sample("id_card_front", "moderate", random.Random(5), invalid=True)
    reading = read_document(sample.image, engine)
    assert reading.id_number == sample.person.id_number  # as printed, not "repaired"
    assert reading.id_number_valid is False
    codes = [f.code for f in check(reading, "id_card_front", sample.person.id_number, TODAY)]
    assert codes == ["id_number_invalid"]


def test_a_household_register_page(drawn: ModuleType, engine: Engine) -> None:
    sample = drawn.make_sample("hukou_page", "none", random.Random(6))
    reading = read_document(sample.image, engine)
    assert reading.kind == "hukou_page"
    assert (reading.name, reading.id_number) == (sample.person.name, sample.person.id_number)
    [finding] = check(reading, "id_card_front", sample.person.id_number, TODAY)
    assert finding.code == "wrong_document"
    assert finding.message == "这张像是户口簿，这里需要身份证正面（有照片的一面）"


def test_a_disability_certificate(drawn: ModuleType, engine: Engine) -> None:
    sample = drawn.make_sample("disability_card", "moderate", random.Random(21), expired=False)
    person = sample.person
    reading = read_document(sample.image, engine)
    assert reading.kind == "disability_card"
    assert reading.name == person.name and reading.sex == person.sex
    assert reading.disability_number == drawn.disability_number(person)
    assert reading.id_number == person.id_number and reading.id_number_valid is True
    assert (reading.disability_category, reading.disability_grade) == (
        person.disability_category,
        person.disability_grade,
    )
    assert check(reading, "disability_card", person.id_number, TODAY) == []
    [finding] = check(reading, "disability_card", "41052219860524733X", TODAY)
    assert finding.code == "id_number_mismatch"
    [finding] = check(reading, "id_card_front", person.id_number, TODAY)
    assert finding.message == "这张像是残疾人证，这里需要身份证正面（有照片的一面）"
    expired = drawn.make_sample("disability_card", "moderate", random.Random(22), expired=True)
    later = read_document(expired.image, engine)
    assert later.valid_until == expired.person.valid_until
    assert [f.code for f in check(later, "disability_card", expired.person.id_number, TODAY)] == [
        "expired"
    ]


def test_a_bank_card_and_a_passbook(drawn: ModuleType, engine: Engine) -> None:
    card = drawn.make_sample("bank_card", "moderate", random.Random(23), invalid=False)
    reading = read_document(card.image, engine)
    assert reading.kind == "bank_card"
    assert reading.account_number == card.person.account_number
    assert reading.account_number_valid is True and reading.bank == card.person.bank
    assert check(reading, "bank_card", card.person.id_number, TODAY, card.person.name) == []
    wrong = drawn.make_sample("bank_card", "none", random.Random(24), invalid=True)
    misprinted = read_document(wrong.image, engine)
    assert [f.code for f in check(misprinted, "bank_card", None, TODAY)] == [
        "account_number_invalid"
    ]
    book = drawn.make_sample("passbook", "moderate", random.Random(25))
    page = read_document(book.image, engine)
    assert page.kind == "passbook"
    assert (page.name, page.account_number) == (book.person.name, book.person.account_number)
    # a passbook serves where a bank card is asked for; someone else's is told apart by name
    assert check(page, "bank_card", None, TODAY, book.person.name) == []
    [finding] = check(page, "bank_card", None, TODAY, "欧阳建国")
    assert (finding.code, finding.message) == ("name_mismatch", "存折上的户名与本人不一致")
    [finding] = check(page, "id_card_back", None, TODAY)
    assert finding.message == "这张像是存折，这里需要身份证反面（有国徽的一面）"


def test_another_paper(drawn: ModuleType, engine: Engine) -> None:
    sample = drawn.make_sample("other", "moderate", random.Random(7))
    reading = read_document(sample.image, engine)
    assert reading.kind == "other"
    [finding] = check(reading, "id_card_back", None, TODAY)
    assert finding.code == "wrong_document"


def test_a_photo_of_nothing_readable(drawn: ModuleType, engine: Engine) -> None:
    out = io.BytesIO()
    drawn._table(random.Random(8)).save(out, "JPEG", quality=80)  # the bare table
    reading = read_document(out.getvalue(), engine)
    assert reading.kind == "unreadable"
    [finding] = check(reading, "id_card_front", None, TODAY)
    assert (finding.code, finding.message) == ("unreadable", "照片看不清，请重拍")
    assert read_document(b"\xff\xd8 not a JPEG", engine).kind == "unreadable"


OFFLINE = """
import random, sys
sys.path.insert(0, "bench")
import prereview_set
from app.prereview import open_engine, read_document
engine = open_engine()
assert engine is not None, "no engine"
sample = prereview_set.make_sample("id_card_front", "none", random.Random(1), invalid=False)
reading = read_document(sample.image, engine)
assert reading.id_number == sample.person.id_number, reading
print("read offline")
"""


def test_the_recogniser_loads_and_reads_without_a_network(drawn: ModuleType) -> None:
    """In a network namespace of its own (no interface but loopback, which is down): the
    models are the wheel's, nothing is fetched."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1) to take the network away")
    # util-linux's unshare from the path, fixed arguments, our own interpreter and script
    probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False)  # noqa: S603
    if probe.returncode != 0:
        pytest.skip(f"unshare -rn not allowed here: {probe.stderr.decode().strip()}")
    done = subprocess.run(  # noqa: S603
        [unshare, "-rn", sys.executable, "-c", OFFLINE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if "no engine" in done.stderr:
        pytest.skip("the text recogniser is not installed")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "read offline" in done.stdout
