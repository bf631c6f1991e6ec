"""The deployment kit (deploy/, docs/deployment.md) says what the code does: the settings
file lists every setting once, loads in production once its secrets are filled in, and the
units and the nginx site fit the settings and the stop grace."""

from __future__ import annotations

import base64
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from app.asgi import create_app
from app.settings import Settings, all_env_names, load_settings
from jobs.scheduler import STOP_GRACE

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _env_file() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / "daiban.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert name not in pairs, f"{name} twice"
            pairs[name] = value
    return pairs


def test_the_settings_file_lists_every_setting_once():
    assert sorted(_env_file()) == sorted(name for name, _ in all_env_names())


def test_the_settings_file_loads_in_production_once_its_secrets_are_made(tmp_path):
    made = {
        "DAIBAN_SECURITY_PII_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    env = {
        name: made.get(name, value.replace("__GENERATE__", secrets.token_urlsafe(48)))
        for name, value in _env_file().items()
    }
    env["DAIBAN_VAR_DIR"] = str(tmp_path)
    settings: Settings = load_settings(env)
    assert settings.core.env == "prod" and settings.scheduler.mode == "off"
    assert settings.storage.public_url.startswith("https://")
    assert settings.server.trusted_proxies == "127.0.0.1"


def test_the_units_run_the_commands_and_wait_out_an_ordinary_stop():
    wechat_timeout = float(_env_file()["DAIBAN_WECHAT_TIMEOUT_SECONDS"])
    for unit, command in (("daiban-api.service", "serve"), ("daiban-worker.service", "worker")):
        text = (DEPLOY / unit).read_text()
        assert re.search(rf"^ExecStart=\S+/daiban {command}$", text, re.MULTILINE), unit
        assert "EnvironmentFile=/etc/daiban/daiban.env" in text
        stop = int(re.search(r"^TimeoutStopSec=(\d+)$", text, re.MULTILINE).group(1))
        assert stop > STOP_GRACE + wechat_timeout, unit
        assert "NoNewPrivileges=true" in text and "ProtectSystem=strict" in text


def _nginx_limits() -> tuple[int, dict[str, int]]:
    """The site's body limit, and each exact location's own, in bytes."""
    text = (DEPLOY / "nginx-daiban.conf").read_text()
    site = re.search(r"^    client_max_body_size (\d+)m;", text, re.MULTILINE)
    assert site is not None
    exact = {
        path: int(size) * 1024 * 1024
        for path, size in re.findall(
            r"location = (\S+) \{[^}]*?client_max_body_size (\d+)m;", text, re.DOTALL
        )
    }
    return int(site.group(1)) * 1024 * 1024, exact


def test_the_nginx_site_lets_a_full_photo_through_and_keeps_metrics_inside():
    text = (DEPLOY / "nginx-daiban.conf").read_text()
    assert _nginx_limits()[0] > Settings().storage.max_upload_bytes
    assert "proxy_set_header X-Real-IP $remote_addr;" in text
    assert re.search(r"location = /metrics \{\s*return 404;", text)


def test_the_nginx_site_lets_through_every_body_the_service_takes(settings):
    """A route that takes a larger body than the site's limit (a catalogue import, through
    the API or the console) has a location of its own that lets it through; else nginx
    answers 413 before the service sees it."""
    site, exact = _nginx_limits()
    app = create_app(settings)
    larger = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            limit = handler.resolve_request_max_body_size()
            if limit is not None and limit > site:
                larger[route.path] = limit
    assert "/console/admin/catalogue/import" in larger  # what the site must let through
    for path, limit in larger.items():
        assert exact.get(path, site) >= limit, f"nginx refuses {path} over {site} bytes"


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed here")
def test_nginx_accepts_the_site(tmp_path):
    site = (DEPLOY / "nginx-daiban.conf").read_text()
    site = re.sub(r"ssl_certificate(_key)?\s+\S+;", "", site).replace(" ssl http2", "")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"
        f" events {{}} http {{ access_log off; include {tmp_path}/site.conf; }}"
    )
    checked = subprocess.run(  # noqa: S603 - nginx from the path, our own files
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
