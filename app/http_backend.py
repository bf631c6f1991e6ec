"""httpcore's network layer on asyncio's own streams, for the WeChat client (app/wechat.py).

httpcore (the HTTP engine under httpx) reaches the network through a backend; its default
goes through anyio, which wraps every read and write of every request in a cancel scope and
answers the pool's "has the server closed this idle connection?" with two system calls (a
`getpeername` and a poll) per connection each time a request starts or ends. In the
delivery job, with 32 messages in flight, that was about a quarter of the WeChat client's
CPU (docs/benchmarks.md, bench/jobs.py). This backend is httpcore's documented interface for
a network backend (`AsyncNetworkBackend`, `AsyncNetworkStream`) on asyncio's streams: a
timeout is `asyncio.timeout`, and an idle connection the server closed is known from the
stream itself (asyncio reads in the background, so the end of the stream has already come).

Errors are httpcore's, as from its own backends: a failed or timed-out connect is
`ConnectError` / `ConnectTimeout` (nothing was sent), a failed or timed-out read or write
`ReadError` / `ReadTimeout` / `WriteError` / `WriteTimeout`.
"""

# ruff: noqa: ASYNC109 (httpcore's interface passes each call's timeout)

from __future__ import annotations

import asyncio
import ssl
import typing

import httpcore

SocketOption = tuple[typing.Any, ...]  # (level, option, value), as setsockopt takes


class _Reader(asyncio.StreamReader):
    """asyncio's stream reader, counting the bytes that came (see AsyncioStream.read)."""

    came = 0

    def feed_data(self, data: bytes) -> None:  # type: ignore[override]
        self.came += len(data)
        super().feed_data(data)


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: _Reader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._taken = 0  # bytes read: what came and was not read is waiting
        self._unsent: list[bytes] = []
        self._write_timeout: float | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._unsent:
            await self._flush()
        try:
            async with asyncio.timeout(timeout):
                data = await self._reader.read(max_bytes)
            self._taken += len(data)
            return data
        except TimeoutError:
            raise httpcore.ReadTimeout("read timed out") from None
        except OSError as exc:  # ssl.SSLError among them
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Kept until the answer is read (or the connection closed): a request's head and
        body, which httpcore writes one after the other, leave in one packet, one system
        call, rather than two."""
        if buffer:
            self._unsent.append(buffer)
            self._write_timeout = timeout

    async def _flush(self) -> None:
        buffer, self._unsent = b"".join(self._unsent), []
        try:
            async with asyncio.timeout(self._write_timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("write timed out") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        # Not waiting for the close to end: a TLS close waits for the peer's answer up to
        # asyncio's 30 s, and the pool closes connections in the path of a request.
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            self._writer.transport.abort()  # mid-handshake: nothing to close politely
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except OSError as exc:  # a certificate refused: ssl.SSLError
            self._writer.transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            # asked of an idle connection: anything that came unasked, the end of the
            # stream or an error means the server closed it (or broke the protocol), and the
            # pool drops it rather than read a stale answer as the next request's
            reader = self._reader
            return reader.came > self._taken or reader.at_eof() or reader.exception() is not None
        name = {
            "ssl_object": "ssl_object",
            "client_addr": "sockname",
            "server_addr": "peername",
            "socket": "socket",
        }.get(info)
        return None if name is None else self._writer.get_extra_info(name)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        reader = _Reader(loop=loop)  # as asyncio.open_connection builds its streams
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(
                    lambda: protocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout("connect timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        # (asyncio sets TCP_NODELAY on every TCP connection: a request's small packet is
        # not held back for the peer's delayed ACK)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used here")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
