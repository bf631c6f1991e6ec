"""Settings: a bad value stops the start with one line naming the variable; prod refuses dev
defaults."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import SettingsError, all_env_names, load_settings

PROD = {
    "DAIBAN_ENV": "prod",
    "DAIBAN_DEMO_DATA": "false",
    "DAIBAN_WECHAT_MODE": "live",
    "DAIBAN_WECHAT_APP_ID": "wx1",
    "DAIBAN_WECHAT_APP_SECRET": "s",
    "DAIBAN_SECURITY_SECRET_KEY": "x" * 40,
    "DAIBAN_SECURITY_PII_KEYS": "k1:" + base64.b64encode(b"z" * 32).decode(),
    "DAIBAN_SECURITY_PII_HASH_KEY": "h" * 40,
    "DAIBAN_DATABASE_URL": "postgresql+asyncpg://daiban@db/daiban",
    "DAIBAN_STORAGE_PUBLIC_URL": "https://daiban.example.gov.cn",
}


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DAIBAN_SERVER_PORT": "eighty"}, "DAIBAN_SERVER_PORT"),
        ({"DAIBAN_SERVER_PORT": "70000"}, "DAIBAN_SERVER_PORT"),
        ({"DAIBAN_TIMEZONE": "Mars/Olympus"}, "DAIBAN_TIMEZONE"),
        ({"DAIBAN_DEMO_DATA": "perhaps"}, "DAIBAN_DEMO_DATA"),
        ({"DAIBAN_WECHAT_MODE": "test"}, "DAIBAN_WECHAT_MODE"),
        ({"DAIBAN_WECHAT_BASE_URL": "api.weixin.qq.com"}, "DAIBAN_WECHAT_BASE_URL"),
        ({"DAIBAN_WECHAT_BASE_URL": "ftp://api.weixin.qq.com"}, "DAIBAN_WECHAT_BASE_URL"),
        ({"DAIBAN_DATABASE_URL": "mysql://x"}, "DAIBAN_DATABASE_URL"),
        # a replica only beside PostgreSQL, and only a PostgreSQL one
        (
            {"DAIBAN_DATABASE_REPLICA_URL": "postgresql+asyncpg://r/d"},
            "DAIBAN_DATABASE_REPLICA_URL",
        ),
        (
            {
                "DAIBAN_DATABASE_URL": "postgresql+asyncpg://p/d",
                "DAIBAN_DATABASE_REPLICA_URL": "sqlite+aiosqlite:///r",
            },
            "DAIBAN_DATABASE_REPLICA_URL",
        ),
        ({"DAIBAN_DATABASE_WAIT_SECONDS": "0"}, "DAIBAN_DATABASE_WAIT_SECONDS"),
        ({"DAIBAN_SECURITY_PII_KEYS": "k1:c2hvcnQ="}, "DAIBAN_SECURITY_PII_KEYS"),
        ({"DAIBAN_NO_SUCH_THING": "1"}, "DAIBAN_NO_SUCH_THING"),
    ],
)
def test_a_bad_value_names_its_variable(tmp_path: Path, env, variable):
    with pytest.raises(SettingsError) as info:
        load_settings({"DAIBAN_VAR_DIR": str(tmp_path), **env})
    assert str(info.value).startswith(variable)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"DAIBAN_WECHAT_MODE": "dev"}, "DAIBAN_WECHAT_MODE"),
        ({"DAIBAN_SECURITY_SECRET_KEY": ""}, "DAIBAN_SECURITY_SECRET_KEY"),
        ({"DAIBAN_SECURITY_SECRET_KEY": "x" * 31}, "DAIBAN_SECURITY_SECRET_KEY"),
        ({"DAIBAN_SECURITY_PII_KEYS": ""}, "DAIBAN_SECURITY_PII_KEYS"),
        ({"DAIBAN_SECURITY_PII_HASH_KEY": ""}, "DAIBAN_SECURITY_PII_HASH_KEY"),
        ({"DAIBAN_SECURITY_PII_HASH_KEY": "h" * 31}, "DAIBAN_SECURITY_PII_HASH_KEY"),
        ({"DAIBAN_DEMO_DATA": "true"}, "DAIBAN_DEMO_DATA"),
        ({"DAIBAN_STORAGE_PUBLIC_URL": "http://10.0.0.5:8000"}, "DAIBAN_STORAGE_PUBLIC_URL"),
        (
            {
                "DAIBAN_STORAGE_BACKEND": "minio",
                "DAIBAN_STORAGE_MINIO_ACCESS_KEY": "a",
                "DAIBAN_STORAGE_MINIO_SECRET_KEY": "b",
            },
            "DAIBAN_STORAGE_MINIO_PUBLIC_SECURE",
        ),
    ],
)
def test_production_refuses_dev_defaults(tmp_path: Path, override, variable):
    assert load_settings({"DAIBAN_VAR_DIR": str(tmp_path), **PROD}).core.env == "prod"
    with pytest.raises(SettingsError) as info:
        load_settings({"DAIBAN_VAR_DIR": str(tmp_path), **PROD, **override})
    assert str(info.value).startswith(variable)


def test_dev_secrets_are_generated_once_and_kept(tmp_path: Path):
    first = load_settings({"DAIBAN_VAR_DIR": str(tmp_path)})
    second = load_settings({"DAIBAN_VAR_DIR": str(tmp_path)})
    assert first.security.secret_key and first.security.secret_key == second.security.secret_key
    assert first.pii_key_ring() == second.pii_key_ring()
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0


def test_the_command_stops_with_one_clear_line(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        env={"DAIBAN_VAR_DIR": str(tmp_path), "DAIBAN_SERVER_PORT": "eighty", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines() == [result.stderr.strip()]
        and "DAIBAN_SERVER_PORT" in result.stderr
    )


OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"
# A row of the settings tables: | `DAIBAN_…` | default | meaning |
SETTING_ROW = re.compile(r"^\| `(DAIBAN_[A-Z0-9_]+)` \|([^|]*)\|", re.MULTILINE)


def documented_settings() -> dict[str, str]:
    """docs/operations.md's settings tables: each variable and its default cell."""
    rows = SETTING_ROW.findall(OPERATIONS.read_text())
    assert len(rows) == len({name for name, _ in rows}), "a setting has two rows"
    return {name: default.strip() for name, default in rows}


def test_operations_documents_every_setting_and_no_other():
    documented = documented_settings()
    names = [name for name, _ in all_env_names()]
    assert [name for name in names if name not in documented] == []
    assert [name for name in documented if name not in names] == []


def test_documented_defaults_are_the_codes_defaults():
    """A default written as a literal (`8000`) is the code's; any other cell (*(none)*,
    *(generated in dev)*, a derived path) stands for a default the code leaves empty."""
    documented = documented_settings()
    wrong = []
    for name, default in all_env_names():
        cell = documented.get(name)
        if cell is None:
            continue  # missing rows are the test above's to report
        literal = re.fullmatch(r"`([^`]*)`", cell)
        if literal:
            shown = str(default).lower() if isinstance(default, bool) else str(default)
            right = literal.group(1) == shown
        else:
            right = default == ""
        if not right:
            wrong.append(f"{name}: documented {cell!r}, code {default!r}")
    assert wrong == []
