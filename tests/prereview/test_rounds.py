"""The supplement rounds (补正) the hints save, in the simulated flow of
bench/prereview_rounds.py run through the test's own app: one order of each mistake, without
the pre-review and then with it."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import httpx
import pytest

from app.context import Context
from app.prereview import Engine
from tests.prereview.conftest import ROOT

pytestmark = pytest.mark.usefixtures("demo")


def _rounds() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "prereview_rounds", ROOT / "bench" / "prereview_rounds.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("prereview_rounds", module)
    spec.loader.exec_module(module)
    return module


async def test_the_hints_save_the_rounds_of_the_mistakes_they_catch(
    client: httpx.AsyncClient, login: Any, ctx: Context, drawn: ModuleType, engine: Engine
) -> None:
    rounds = _rounds()
    mistakes = ["wrong_side", "expired", "someone_else", "none"]
    without = await rounds.simulate(
        client, login, ctx, mistakes, with_prereview=False, level="none"
    )
    assert (without.rounds, without.retakes, without.photos_read) == (3, 0, 0)
    with_ = await rounds.simulate(client, login, ctx, mistakes, with_prereview=True, level="none")
    # Each mistake was hinted, retaken and never reached the agent; the right photos were
    # left alone.
    assert (with_.rounds, with_.retakes, with_.needless_retakes) == (0, 3, 0)
    assert with_.photos_read == 8 + 3
