"""Access tokens (stateless, HMAC-signed, short-lived) and opaque refresh/binding secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

import msgspec


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the account, its role and the region its scope hangs from, and the
    login (refresh-token family) the access token was issued to, so ending that login ends
    the token too (app/security/revocations.py). Jobs and internal scopes have no login."""

    account_id: int
    role: str
    region_id: int | None
    login_id: str = ""


class _Claims(msgspec.Struct, frozen=True):
    sub: int
    role: str
    rgn: int | None
    lid: str
    exp: int


class TokenError(Exception):
    def __init__(self, reason: str) -> None:  # "expired" or "invalid"
        super().__init__(reason)
        self.reason = reason


# v2 carries the login id; v1 tokens (without it) are refused, and the phone refreshes.
VERSION = "v2"
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Claims)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Tokens already verified, kept with what they carry: a phone sends the same token with
# every request until it refreshes, and its signature, base64 and claims are the same each
# time. At most this many; all are forgotten when it fills.
VERIFIED_MOST = 10_000


class AccessTokens:
    def __init__(self, secret_key: str, ttl_seconds: int) -> None:
        self._key = hashlib.sha256(b"access-token:" + secret_key.encode()).digest()
        self.ttl_seconds = ttl_seconds
        self._verified: dict[str, tuple[Principal, int]] = {}

    def issue(self, principal: Principal, now: datetime) -> tuple[str, int]:
        exp = int(now.timestamp()) + self.ttl_seconds
        claims = _Claims(
            principal.account_id, principal.role, principal.region_id, principal.login_id, exp
        )
        body = _b64(_encoder.encode(claims))
        return f"{VERSION}.{body}.{self._sign(body)}", exp

    def verify(self, token: str, now: datetime) -> Principal:
        """The principal a token carries, when its signature is this key's and it has not
        expired by `now` ("invalid" or "expired" else). A token verified before is not
        checked again, only its expiry (`VERIFIED_MOST`); whether its login still holds is
        the caller's to ask (app/security/revocations.py)."""
        known = self._verified.get(token)
        if known is None:
            known = self._checked(token)
            if len(self._verified) >= VERIFIED_MOST:
                self._verified.clear()
            self._verified[token] = known
        principal, exp = known
        if exp <= now.timestamp():
            raise TokenError("expired")
        return principal

    def _checked(self, token: str) -> tuple[Principal, int]:
        version, _, rest = token.partition(".")
        body, _, signature = rest.partition(".")
        if version != VERSION or not body or not signature:
            raise TokenError("invalid")
        if not hmac.compare_digest(signature, self._sign(body)):
            raise TokenError("invalid")
        try:
            claims = _decoder.decode(_unb64(body))
        except (msgspec.DecodeError, ValueError):
            raise TokenError("invalid") from None
        return Principal(claims.sub, claims.role, claims.rgn, claims.lid), claims.exp

    def _sign(self, body: str) -> str:
        return _b64(hmac.digest(self._key, body.encode(), "sha256"))  # one-shot, in C


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_hash(value: str) -> str:
    """Refresh tokens and binding codes are random and long: a plain SHA-256 is enough."""
    return hashlib.sha256(value.encode()).hexdigest()


BINDING_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud by phone


def new_binding_code() -> str:
    return "".join(secrets.choice(BINDING_ALPHABET) for _ in range(10))
