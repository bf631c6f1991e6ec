"""Personal data at rest: AES-GCM with key ids for rotation, keyed hashes, and masking."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.settings import Settings


class PiiCipher:
    """Encrypts with the first key of the ring; decrypts with whichever key id is stored."""

    def __init__(self, keys: dict[str, bytes], hash_key: str) -> None:
        if not keys:
            raise ValueError("PII key ring is empty")
        self.current_kid = next(iter(keys))
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self._hash_key = hash_key.encode()

    def encrypt(self, plaintext: str, *, context: str) -> str:
        # The context (e.g. "id_number") is bound as associated data: a value copied into
        # another column does not decrypt there.
        nonce = os.urandom(12)
        sealed = self._keys[self.current_kid].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{self.current_kid}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str, *, context: str) -> str:
        kid, _, b64 = stored.partition(":")
        raw = base64.b64decode(b64)
        return self._keys[kid].decrypt(raw[:12], raw[12:], context.encode()).decode()

    def lookup_hash(self, value: str, *, context: str) -> str:
        """A keyed hash for equality look-ups; useless without the key (ID numbers are few)."""
        message = f"{context}:{value}".encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()


def cipher_for(settings: Settings) -> PiiCipher:
    """The settings' personal-data keys as a cipher: the first key encrypts, all decrypt."""
    return PiiCipher(settings.pii_key_ring(), settings.security.pii_hash_key)


def mask_id_number(value: str | None) -> str | None:
    if not value:
        return None
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) == 11:
        return value[:3] + "****" + value[-4:]
    return value[:-4].translate(str.maketrans("0123456789", "**********")) + value[-4:]


def mask_name(value: str | None) -> str | None:
    """张三 → 张*, 欧阳小明 → 欧***: for lists shown to people outside the order."""
    if not value:
        return None
    return value[0] + "*" * (len(value) - 1)
