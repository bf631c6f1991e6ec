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
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Account, Complaint, KeyCheck, Prereview
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


# --- rotation ---------------------------------------------------------------------------

# Every sealed column: its table, the table's key, and (column, context) pairs.
ENCRYPTED: tuple[tuple[Any, Any, tuple[tuple[str, str], ...]], ...] = (
    (Account, Account.id, (("phone_enc", "phone"), ("id_number_enc", "id_number"))),
    (
        Complaint,
        Complaint.id,
        (("contact_phone_enc", "phone"), ("contact_id_number_enc", "id_number")),
    ),
    (Prereview, Prereview.upload_id, (("fields_enc", "prereview"),)),
)


def _stale(model: Any, columns: tuple[tuple[str, str], ...], cipher: PiiCipher) -> Any:
    prefix = f"{cipher.current_kid}:"
    return or_(
        *(
            getattr(model, column).is_not(None) & ~getattr(model, column).startswith(prefix)
            for column, _ in columns
        )
    )


def stale_values(session: Session, cipher: PiiCipher) -> int:
    """Rows (accounts, complaints' contacts, pre-reviews) with a value under a key other
    than the ring's first."""
    return sum(
        int(session.scalar(select(func.count()).where(_stale(model, columns, cipher))) or 0)
        for model, _, columns in ENCRYPTED
    )


def rotate_batch(session: Session, cipher: PiiCipher, batch: int) -> int:
    """Re-encrypt with the ring's first key the values of up to `batch` rows of each table
    still under an older key (and the check value); how many values changed. A value
    changes only if it is still the one read: a phone changed meanwhile is kept as it is."""
    prefix = f"{cipher.current_kid}:"
    changed = 0
    for model, key, columns in ENCRYPTED:
        rows = session.execute(
            select(key, *(getattr(model, column) for column, _ in columns))
            .where(_stale(model, columns, cipher))
            .order_by(key)
            .limit(batch)
        ).all()
        for row in rows:
            for i, (column, context) in enumerate(columns, start=1):
                old = row[i]
                if old is None or old.startswith(prefix):
                    continue
                new = cipher.encrypt(cipher.decrypt(old, context=context), context=context)
                done = session.execute(
                    update(model)
                    .where(key == row[0], getattr(model, column) == old)
                    .values({column: new})
                    .execution_options(synchronize_session=False)
                )
                changed += done.rowcount  # type: ignore[attr-defined]
    check = session.get(KeyCheck, NAME)
    if check is not None and not check.sealed.startswith(prefix):
        known = cipher.decrypt(check.sealed, context=CONTEXT)
        check.sealed = cipher.encrypt(known, context=CONTEXT)
    return changed
