"""A small HTTP/1.1 load generator: keep-alive connections, one request in flight on each.

httpx spends more time per request than the service does, so it would measure itself. This
client writes prepared bytes and reads the answer by Content-Length; one core does well over
ten thousand requests a second, enough headroom for a single granian worker on the other.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Result:
    requests: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        """Answers with a 2xx status: only these count towards the rate."""
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def errors(self) -> int:
        return self.requests - self.ok

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def median(results: list[Result]) -> Result:
    """The median round by rate: rounds interleave the endpoints and this one is kept, as
    the machine's speed drifts from minute to minute."""
    return sorted(results, key=lambda r: r.rate)[len(results) // 2]


def request_bytes(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _run(
    url: str, make: Callable[[int], bytes], connections: int, seconds: float, limit: int | None
) -> Result:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    result = Result()
    issued = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal issued
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline and (limit is None or issued < limit):
                number = issued
                issued += 1
                writer.write(make(number))
                result.statuses[await _read_response(reader)] += 1
                result.requests += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


def hammer(
    url: str,
    make: Callable[[int], bytes],
    *,
    connections: int = 16,
    seconds: float = 5.0,
    limit: int | None = None,
) -> Result:
    """Send requests built by `make(n)` for `seconds` (or `limit` requests) and count them."""
    return asyncio.run(_run(url, make, connections, seconds, limit))
