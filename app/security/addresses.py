"""The address a request comes from: the peer's, or X-Real-IP when the peer is a proxy the
settings trust (nginx in front of the service), so limits and records name the person's."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from app.settings import Settings


def client_address(settings: Settings) -> Callable[[str, str], str]:
    """A function of (the peer's address, the X-Real-IP header) giving the client's."""
    proxies = {_ip(a) for a in settings.server.trusted_proxies.split(",")} - {None}

    def address(peer: str, real_ip: str) -> str:
        if proxies and _ip(peer) in proxies:
            real = real_ip.strip()
            if _ip(real) is not None:
                return real
        return peer or "unknown"

    return address


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None
