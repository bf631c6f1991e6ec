"""A lean stand-in for WeChat's API host for delivery benchmarks: the two calls delivery
makes (`/cgi-bin/stable_token`, `/cgi-bin/message/subscribe/send`), answered as WeChat
answers them, on asyncio with keep-alive, each send after a set delay.

WeChat's servers do not run on the county's machine, but the fake does, and the test
suite's fake (tests/wechat_server.py, the standard library's threading HTTP server) took
about 0.3 ms of CPU a message, a sixth of what the two cores gave the benchmark. This one
takes a fraction of that. It also counts what it was sent: `GET /stats` answers how many
sends it accepted and how many of them repeated a message it had already accepted (the
same recipient and the same data), which must be 0.

Run: `python bench/lean_wechat.py DELAY_SECONDS`; prints its base address, then serves
until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

_HEAD_END = b"\r\n\r\n"
_LONGEST_HEAD = 16 * 1024


class Fake:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.tokens = 0
        self.sends = 0
        # each accepted send's body: a message sent twice comes with the same body (the
        # same recipient, template and data, encoded the same way)
        self.seen: Counter[bytes] = Counter()

    def answer(self, path: str, body: bytes) -> bytes:
        if path == "/cgi-bin/message/subscribe/send":
            self.sends += 1
            self.seen[body] += 1
            return b'{"errcode": 0, "errmsg": "ok", "msgid": %d}' % self.sends
        if path == "/cgi-bin/stable_token":
            self.tokens += 1
            answer: dict[str, object] = {
                "access_token": f"token-{self.tokens}",
                "expires_in": 7200,
            }
        elif path == "/stats":
            twice = sum(n - 1 for n in self.seen.values() if n > 1)
            answer = {"sends": self.sends, "twice": twice, "tokens": self.tokens}
        else:
            answer = {"errcode": 404, "errmsg": "no such api"}
        return json.dumps(answer).encode()


class Connection(asyncio.Protocol):
    """HTTP/1.1 requests one after another on a kept-alive connection; each answered in
    the order it came (a send after the delay)."""

    def __init__(self, fake: Fake) -> None:
        self.fake = fake
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.answering = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next()

    def _next(self) -> None:
        if self.answering:
            return
        end = self.buffer.find(_HEAD_END)
        if end < 0:
            if len(self.buffer) > _LONGEST_HEAD and self.transport:
                self.transport.close()
            return
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        path = lines[0].split(" ")[1].split("?", 1)[0]
        self.answering = True
        if path == "/cgi-bin/message/subscribe/send" and self.fake.delay:
            asyncio.get_running_loop().call_later(self.fake.delay, self._answer, path, body)
        else:
            self._answer(path, body)

    def _answer(self, path: str, body: bytes) -> None:
        data = self.fake.answer(path, body)
        self.answering = False
        if self.transport is None:
            return
        self.transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (len(data), data)
        )
        self._next()


async def serve(delay: float) -> None:
    fake = Fake(delay)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(fake), "127.0.0.1", 0, backlog=1024)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"http://{host}:{port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(float(sys.argv[1])))
