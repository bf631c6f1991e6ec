"""Keys cannot silently change: the personal-data keys of a database are checked at start.

The first start writes a known text, encrypted with the key in use and hashed with the hash
key, into `key_checks`; every start after reads it back. Keys that cannot read it are not
the ones the database's ID numbers and phones were written with (a restore without the
keys, dev secrets deleted beside a kept database, a typo): the service then refuses to
start with one line naming the variable, and writes nothing, instead of answering 500 at
every login that needs a decryption. Adding a new first key while keeping the old ones in
the ring passes: the check value names its key id, as every encrypted value does.

A database from before this check has no check value: before writing one, a stored phone is
read back with the keys given, so that wrong keys are caught there too."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Account, KeyCheck
from app.security.pii import PiiCipher

NAME, KNOWN, CONTEXT = "pii", "daiban personal-data key check", "key_check"


class KeysMismatch(Exception):
    """One line for the operator: which variable is wrong, and that nothing was changed."""


def check_keys(session: Session, cipher: PiiCipher, now: datetime) -> None:
    row = session.get(KeyCheck, NAME)
    if row is None:
        _check_stored_data(session, cipher)
        try:
            with session.begin_nested():
                session.add(
                    KeyCheck(
                        name=NAME,
                        sealed=cipher.encrypt(KNOWN, context=CONTEXT),
                        lookup_hash=cipher.lookup_hash(KNOWN, context=CONTEXT),
                        created_at=now,
                        updated_at=now,
                    )
                )
            return
        except IntegrityError:  # another process, starting at the same time, wrote it first
            row = session.get(KeyCheck, NAME)
            if row is None:
                raise
    if not _reads(cipher, row.sealed, CONTEXT, KNOWN):
        raise _wrong_keys(row.sealed)
    if cipher.lookup_hash(KNOWN, context=CONTEXT) != row.lookup_hash:
        raise _wrong_hash_key()


def _check_stored_data(session: Session, cipher: PiiCipher) -> None:
    sample = session.execute(
        select(Account.phone_enc, Account.phone_hash)
        .where(Account.phone_enc.is_not(None), Account.phone_hash.is_not(None))
        .limit(1)
    ).first()
    if sample is None or sample.phone_enc is None:
        return
    sealed, stored_hash = sample.phone_enc, sample.phone_hash
    try:
        phone = cipher.decrypt(sealed, context="phone")
    except Exception:
        raise _wrong_keys(sealed) from None
    if cipher.lookup_hash(phone, context="phone") != stored_hash:
        raise _wrong_hash_key()


def _reads(cipher: PiiCipher, sealed: str, context: str, expected: str) -> bool:
    try:
        return cipher.decrypt(sealed, context=context) == expected
    except Exception:  # an unknown key id (KeyError) or another key (InvalidTag)
        return False


def _wrong_keys(sealed: str) -> KeysMismatch:
    kid = sealed.partition(":")[0]
    return KeysMismatch(
        "DAIBAN_SECURITY_PII_KEYS: these keys cannot read this database's personal data"
        f" (written with key id {kid!r}); set the keys it was written with. Nothing was changed."
    )


def _wrong_hash_key() -> KeysMismatch:
    return KeysMismatch(
        "DAIBAN_SECURITY_PII_HASH_KEY: not the key this database's look-ups were made with;"
        " set that key. Nothing was changed."
    )
