"""A small local HTTP server that answers like the WeChat API host, error codes included.

Behaviour is chosen by the code the test sends, so each test reads as its scenario:
  jscode2session  ok:<openid>[:<unionid>] success | bad 40029 | limit 45011 | risky 40226
                  | busy -1 | slow (sleeps past the client timeout) | http500
  getuserphonenumber  phone:<number> success | bad 40029; an access token listed in
                  `expired_tokens` answers 40001 once refreshed tokens are issued
  msg_sec_check   content with 违禁 is risky, with 可疑 needs review, else passes
  subscribe/send  by the recipient's openid: unsub:* 43101 | busy:* -1 the first time, then
                  success | badfield:* 47003 | slow:* sleeps past the client timeout | anything
                  else success (after `send_delay` seconds, and once `hold`, when set, lets
                  it go); every message WeChat accepted (or, for slow:*, received) is kept
                  in `delivered`; expired tokens as above
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

ERRORS = {"bad": 40029, "limit": 45011, "risky": 40226, "busy": -1}
# Answers that are not WeChat's JSON object: a gateway's page, other JSON, a bad errcode
ODD = {
    "html": "<html><body>502 Bad Gateway</body></html>",
    "list": "[1, 2]",
    "oddcode": '{"errcode": "x"}',
    "hugecode": '{"errcode": 1e999}',
}


class _Server(ThreadingHTTPServer):
    # WeChat takes many connections at once; the standard library's backlog of 5 dropped
    # connection attempts beyond it, which the client retried a second later (bench/jobs.py
    # measured that second, not the service: fewer messages a second with 32 in flight
    # than with 8)
    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        # a client that refused the certificate (a TLS test) or went away: not a failure
        # of the fake, and no traceback on the test's output
        if not isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class FakeWeChat:
    """`tls`: serve https with this context (its certificate and key loaded), as WeChat's
    host does."""

    def __init__(self, *, slow_seconds: float = 2.0, tls: ssl.SSLContext | None = None) -> None:
        self.slow_seconds = slow_seconds
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.user_agents: set[str | None] = set()  # every User-Agent a request named
        self.tokens_issued = 0
        self.expired_tokens: set[str] = set()
        self.delivered: list[dict[str, Any]] = []
        self.send_delay = 0.0
        # each send waits for one of its permits before answering (a test lets them go)
        self.hold: threading.Semaphore | None = None
        self._busy_seen: set[str] = set()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._scheme = "http"
        if tls is not None:
            # each connection's handshake in its own thread, not in the one accepting
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host}:{port}"

    def __enter__(self) -> FakeWeChat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def _answer(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | str]:
        with self._lock:
            self.requests.append((path, {**query, **body}))
        if path == "/sns/jscode2session":
            code = query.get("js_code", "")
            if code == "slow":
                time.sleep(self.slow_seconds)
            if code == "http500":
                return 500, {}
            if code in ERRORS:
                return 200, {"errcode": ERRORS[code], "errmsg": f"fake {code}"}
            if code in ODD:
                return 200, ODD[code]
            if code.startswith("ok:"):
                _, openid, *union = code.split(":")
                answer = {"openid": openid, "session_key": "SECRET-SESSION-KEY"}
                if union:
                    answer["unionid"] = union[0]
                return 200, answer
            return 200, {"errcode": 40029, "errmsg": "invalid code"}
        if path == "/cgi-bin/stable_token":
            self.tokens_issued += 1
            return 200, {"access_token": f"token-{self.tokens_issued}", "expires_in": 7200}
        if path == "/wxa/business/getuserphonenumber":
            if query.get("access_token") in self.expired_tokens:
                return 200, {"errcode": 40001, "errmsg": "invalid credential"}
            code = body.get("code", "")
            if code.startswith("phone:"):
                number = code.split(":", 1)[1]
                return 200, {
                    "errcode": 0,
                    "phone_info": {"purePhoneNumber": number, "countryCode": "86"},
                }
            return 200, {"errcode": 40029, "errmsg": "invalid code"}
        if path == "/wxa/msg_sec_check":
            content = str(body.get("content", ""))
            suggest = "risky" if "违禁" in content else "review" if "可疑" in content else "pass"
            return 200, {"errcode": 0, "result": {"suggest": suggest, "label": 100}}
        if path == "/cgi-bin/message/subscribe/send":
            if query.get("access_token") in self.expired_tokens:
                return 200, {"errcode": 40001, "errmsg": "invalid credential"}
            return self._subscribe_send(body)
        return 404, {"errcode": 404, "errmsg": "no such api"}

    def _subscribe_send(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        touser = str(body.get("touser", ""))
        if self.send_delay:
            time.sleep(self.send_delay)
        if self.hold is not None:
            self.hold.acquire()
        if touser.startswith("unsub:"):
            return 200, {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
        if touser.startswith("badfield:"):
            return 200, {"errcode": 47003, "errmsg": "argument invalid! data.thing1.value"}
        key = json.dumps(body, sort_keys=True)
        if touser.startswith("busy:"):
            with self._lock:
                first = key not in self._busy_seen
                self._busy_seen.add(key)
            if first:
                return 200, {"errcode": -1, "errmsg": "system error"}
        with self._lock:
            self.delivered.append(body)
        if touser.startswith("slow:"):
            time.sleep(self.slow_seconds)
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as WeChat's servers do
            disable_nagle_algorithm = True  # headers and body leave at once, as from nginx

            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                if len(raw) < length:  # the client died mid-request: WeChat never saw it
                    self.close_connection = True
                    return
                body = json.loads(raw) if raw else {}
                fake.user_agents.add(self.headers.get("user-agent"))
                status, answer = fake._answer(method, url.path, query, body)
                data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *args: object) -> None:
                return None

        return Handler
