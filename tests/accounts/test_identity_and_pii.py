"""ID numbers (GB 11643), phone numbers, encryption at rest and masking."""

from __future__ import annotations

from datetime import date

import pytest
from cryptography.exceptions import InvalidTag

from app.security.identity import id_number_check_char, id_number_problem, is_mobile, is_phone
from app.security.pii import PiiCipher, mask_id_number, mask_name, mask_phone

VALID = "11010519491231002X"  # the standard's own example


def test_the_standard_example_is_valid():
    assert id_number_problem(VALID) is None
    assert id_number_check_char(VALID[:17]) == "X"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("110105194912310021", "校验位"),  # check digit should be X
        ("110105194902300028", "出生日期不存在"),  # 30 February
        ("110105202912310025", "出生日期不正确"),  # born in the future
        ("11010519491231002", "18位"),
        ("1101051949123100AX", "格式"),
    ],
)
def test_bad_id_numbers_are_refused_with_the_reason(number, reason):
    problem = id_number_problem(number, today=date(2026, 11, 22))
    assert problem is not None and reason in problem


def test_phone_rules():
    assert is_mobile("13812345678")
    assert not is_mobile("12812345678") and not is_mobile("1381234567")
    assert is_phone("0632-8812345") and is_phone("13812345678")
    assert not is_phone("8812345")


def _cipher(keys: dict[str, bytes]) -> PiiCipher:
    return PiiCipher(keys, "hash-key")


def test_encryption_round_trip_and_random_nonces():
    cipher = _cipher({"k1": b"a" * 32})
    sealed = cipher.encrypt(VALID, context="id_number")
    assert VALID not in sealed and sealed.startswith("k1:")
    assert cipher.decrypt(sealed, context="id_number") == VALID
    assert cipher.encrypt(VALID, context="id_number") != sealed


def test_ciphertext_is_bound_to_its_column():
    cipher = _cipher({"k1": b"a" * 32})
    sealed = cipher.encrypt("13812345678", context="phone")
    with pytest.raises(InvalidTag):
        cipher.decrypt(sealed, context="id_number")


def test_key_rotation_keeps_old_values_readable():
    old = _cipher({"k1": b"a" * 32})
    sealed = old.encrypt(VALID, context="id_number")
    rotated = _cipher({"k2": b"b" * 32, "k1": b"a" * 32})
    assert rotated.decrypt(sealed, context="id_number") == VALID
    assert rotated.encrypt(VALID, context="id_number").startswith("k2:")


def test_lookup_hash_is_keyed_and_stable():
    a = _cipher({"k1": b"a" * 32})
    assert a.lookup_hash(VALID, context="id_number") == a.lookup_hash(VALID, context="id_number")
    other = PiiCipher({"k1": b"a" * 32}, "another-key")
    assert other.lookup_hash(VALID, context="id_number") != a.lookup_hash(
        VALID, context="id_number"
    )


def test_masks():
    assert mask_id_number(VALID) == "110***********002X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("0632-8812345") == "****-***2345"
    assert mask_name("欧阳小明") == "欧***"
