"""The WeChat client's own network layer (app/http_backend.py under app/wechat.py): https to
a host a trusted root vouches for and to no other, timeouts that say whether the request
may have reached WeChat, and kept-alive connections WeChat closed while idle never used
again."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app import errors
from app.settings import WeChatSettings
from app.wechat import POOLS, LiveWeChat, WeChatNoAnswer
from tests.wechat_server import FakeWeChat

DATA = {"thing1": {"value": "养老保险参保登记"}}


def settings(base_url: str, timeout: float = 2.0) -> WeChatSettings:
    return WeChatSettings(
        mode="live",
        app_id="wx-test-app",
        app_secret="wx-test-secret",
        base_url=base_url,
        timeout_seconds=timeout,
    )


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def certificates(folder: Path, *names: str) -> tuple[Path, Path, Path]:
    """A root of our own and a server certificate it signs for `names` (DNS names or IP
    addresses): the root's file, the server's certificate and its key."""
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(_name("daiban test root"))
        .issuer_name(_name("daiban test root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    paths = folder / "root.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(root.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def serving(certificate: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    return context


async def test_calls_go_over_https_to_a_host_a_trusted_root_vouches_for(tmp_path):
    root, certificate, key = certificates(tmp_path, "127.0.0.1")
    with FakeWeChat(tls=serving(certificate, key)) as fake:
        assert fake.base_url.startswith("https://")
        wechat = LiveWeChat(
            settings(fake.base_url), ssl_context=ssl.create_default_context(cafile=root)
        )
        try:
            await wechat.send_subscription("ok-openid", "TPL", "pages/x", DATA, "formal")
            await wechat.send_subscription("ok-openid-2", "TPL", "pages/x", DATA, "formal")
            assert await wechat.phone_number("phone:13800000000") == "13800000000"
            assert await wechat.check_text("ok-openid", "可疑的话") == "review"
        finally:
            await wechat.aclose()
    assert [m["touser"] for m in fake.delivered] == ["ok-openid", "ok-openid-2"]
    assert fake.tokens_issued == 1


async def test_ssl_cert_file_names_the_roots_to_trust(tmp_path, monkeypatch):
    """A county whose way out re-signs TLS names its own root, as docs/operations.md says."""
    root, certificate, key = certificates(tmp_path, "127.0.0.1")
    monkeypatch.setenv("SSL_CERT_FILE", str(root))
    with FakeWeChat(tls=serving(certificate, key)) as fake:
        wechat = LiveWeChat(settings(fake.base_url))
        try:
            await wechat.send_subscription("ok-openid", "TPL", "pages/x", DATA, "formal")
        finally:
            await wechat.aclose()
    assert [m["touser"] for m in fake.delivered] == ["ok-openid"]


@pytest.mark.parametrize("names", [("127.0.0.1",), ("api.weixin.example",)])
async def test_a_host_not_vouched_for_gets_nothing(tmp_path, names):
    """A certificate no trusted root signed (the default roots do not know ours), or one
    for another name: the call fails before anything is sent, as "unreachable", never as
    "no answer" (which would leave a message uncertain rather than retried)."""
    root, certificate, key = certificates(tmp_path, *names)
    trusting = names != ("127.0.0.1",)  # the second case trusts the root: the name is wrong
    with FakeWeChat(tls=serving(certificate, key)) as fake:
        context = ssl.create_default_context(cafile=root) if trusting else None
        wechat = LiveWeChat(settings(fake.base_url), ssl_context=context)
        try:
            with pytest.raises(errors.WeChatUnavailable):
                await wechat.send_subscription("ok-openid", "TPL", "pages/x", DATA, "formal")
        finally:
            await wechat.aclose()
    assert fake.requests == [] and fake.delivered == []


async def test_a_handshake_that_never_ends_times_out_as_unreachable():
    listener = socket.create_server(("127.0.0.1", 0))  # takes connections, never answers
    port = listener.getsockname()[1]
    wechat = LiveWeChat(settings(f"https://127.0.0.1:{port}", timeout=0.3))
    started = time.monotonic()
    try:
        with pytest.raises(errors.WeChatUnavailable):
            await wechat.send_subscription("ok-openid", "TPL", "pages/x", DATA, "formal")
    finally:
        await wechat.aclose()
        listener.close()
    assert time.monotonic() - started < 2.0


class OneAnswerServer:
    """Answers the token on a connection kept open, and a message with WeChat's JSON and
    then, after a moment, `farewell`: closes the connection ("close"), or first writes an
    answer nobody asked for and then closes it ("stray"), or keeps it open ("keep"); or
    ("silent") answers the token and the first message, and no request after them."""

    def __init__(self, farewell: str) -> None:
        self.farewell = farewell
        self.connections = 0
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests += 1
                if self.requests > 2 and self.farewell == "silent":
                    await asyncio.sleep(10)
                token = b"stable_token" in head
                answer = (
                    b'{"access_token": "t", "expires_in": 7200}'
                    if token
                    else b'{"errcode": 0, "errmsg": "ok"}'
                )
                assert body
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(answer), answer)
                )
                await writer.drain()
                if token or self.farewell in ("silent", "keep"):
                    continue
                await asyncio.sleep(0.05)
                if self.farewell == "stray":
                    stray = b'{"errcode": 45009, "errmsg": "stale"}'
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(stray), stray)
                    )
                    await writer.drain()
                writer.close()
                return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.mark.parametrize("farewell", ["close", "stray"])
async def test_a_connection_wechat_closed_while_idle_is_not_used_again(farewell):
    """Each message goes on a connection WeChat has not closed: neither "no answer" (which
    would leave it uncertain) nor the stray answer read as its own."""
    server = OneAnswerServer(farewell)
    async with server as base_url:
        wechat = LiveWeChat(settings(base_url))
        try:
            for n in range(6):
                await wechat.send_subscription(f"ok-{n}", "TPL", "pages/x", DATA, "formal")
                await asyncio.sleep(0.15)  # WeChat closes the connection meanwhile
        finally:
            await wechat.aclose()
    assert server.requests == 1 + 6  # the token and each message once
    # the token's connection, which WeChat kept open, carried the first message; each
    # message after it found its connection closed and opened a new one
    assert server.connections == 6


async def test_a_quiet_client_keeps_one_connection_open():
    """Calls one after another go on the same kept-alive connection (not one per pool in
    turn, each a new TLS handshake on WeChat's real host); calls at once are spread."""
    server = OneAnswerServer("keep")
    async with server as base_url:
        wechat = LiveWeChat(settings(base_url))
        try:
            for n in range(5):
                await wechat.send_subscription(f"ok-{n}", "TPL", "pages/x", DATA, "formal")
            assert server.connections == 1 and server.requests == 6
            await asyncio.gather(
                *(
                    wechat.send_subscription(f"at-once-{n}", "TPL", "pages/x", DATA, "formal")
                    for n in range(2 * POOLS)
                )
            )
        finally:
            await wechat.aclose()
    assert server.requests == 6 + 2 * POOLS
    assert server.connections >= POOLS  # every pool took its share


async def test_no_answer_to_a_message_is_no_answer_not_unreachable():
    server = OneAnswerServer("silent")
    async with server as base_url:
        wechat = LiveWeChat(settings(base_url, timeout=0.3))
        try:
            await wechat.send_subscription("ok-1", "TPL", "pages/x", DATA, "formal")
            with pytest.raises(WeChatNoAnswer):
                await wechat.send_subscription("ok-2", "TPL", "pages/x", DATA, "formal")
        finally:
            await wechat.aclose()
    assert server.requests == 3
