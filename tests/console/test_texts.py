"""What a person reads on the console is Chinese with full-width punctuation: the console's
own templates and messages, and the service's messages as the console shows them."""

from __future__ import annotations

import ast
import io
import re
import time
import tokenize
from pathlib import Path

import pytest

from console.router import full_width

ROOT = Path(__file__).resolve().parents[2] / "console"
CJK = r"[\u4e00-\u9fff]"
HALF_BESIDE_CHINESE = re.compile(rf"{CJK}[,;:!?()]|[,;:!?()]{CJK}")


@pytest.mark.parametrize("path", sorted((ROOT / "templates").glob("*.html")), ids=lambda p: p.name)
def test_templates_use_full_width_punctuation(path):
    found = [
        line for line in path.read_text("utf-8").splitlines() if HALF_BESIDE_CHINESE.search(line)
    ]
    assert found == []


def test_the_consoles_messages_use_full_width_punctuation():
    found = []
    for path in sorted(ROOT.glob("*.py")):
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline)
        for token in tokens:
            if token.string.startswith('"""'):
                continue  # a docstring: English for developers
            if token.type == tokenize.STRING and HALF_BESIDE_CHINESE.search(token.string):
                found.append(f"{path.name}:{token.start[0]}: {token.string}")
    assert found == []


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("登录已过期,请重新登录", "登录已过期，请重新登录"),
        (
            "不能为自己重新生成绑定码 (会解除本机绑定), 请由另一位管理员操作",
            "不能为自己重新生成绑定码（会解除本机绑定），请由另一位管理员操作",
        ),
        ("开发模式请使用 dev:<名字> 登录", "开发模式请使用 dev:<名字> 登录"),
        ("2026-11-24 17:00 前", "2026-11-24 17:00 前"),
        ("", ""),
    ],
)
def test_the_services_messages_are_shown_with_full_width_punctuation(said, shown):
    assert full_width(said) == shown


def test_the_punctuation_filter_is_linear_in_the_texts_length():
    """It runs on the event loop over messages that may echo what someone typed."""
    spaced = "未知部门 " + " " * 200_000 + "x"
    started = time.perf_counter()
    assert full_width(spaced) == spaced
    assert time.perf_counter() - started < 1.0


def test_every_audited_action_has_its_chinese_name():
    """The audit log's page names each action: a new action without a name is caught here."""
    from console.admin import ACTION_NAMES

    recorded = set()
    for path in (ROOT.parent / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
                and len(node.args) > 2
                and isinstance(node.args[2], ast.Constant)
            ):
                recorded.add(node.args[2].value)
    recorded |= {"region.add", "region.restore"}  # app/regions/service.py picks one of the two
    assert len(recorded) > 20
    assert recorded - set(ACTION_NAMES) == set()


def test_every_scheduled_job_has_its_chinese_name():
    from console.admin import JOB_NAMES

    source = (ROOT.parent / "jobs" / "scheduler.py").read_text("utf-8")
    scheduled = set(re.findall(r'id="([a-z_]+)"', source))
    scheduled |= set(re.findall(r'_daily\([^)]*"([a-z_]+)"\)', source))
    assert {"deliver", "reminders", "ledgers", "clean_up", "retention", "backup"} <= scheduled
    assert scheduled - set(JOB_NAMES) == set()
