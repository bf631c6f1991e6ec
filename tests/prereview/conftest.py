"""The prereview tests' photos come from the benchmark's own generator
(bench/prereview_set.py), drawn in WenQuanYi Micro Hei; the reading tests use the real
recogniser. CI installs both (.ci/run: fonts-wqy-microhei; the test extra pulls in the
prereview extra); elsewhere those tests are skipped, saying which is missing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from app.prereview import Engine, load_engine

ROOT = Path(__file__).resolve().parents[2]


def _dataset() -> ModuleType:
    name = "prereview_set"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "prereview_set.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


dataset = _dataset()


@pytest.fixture(scope="session")
def drawn() -> ModuleType:
    if not dataset.have_font():
        pytest.skip(f"no CJK font at {dataset.FONT_PATH} (apt-get install fonts-wqy-microhei)")
    return dataset


@pytest.fixture(scope="session")
def engine() -> Engine:
    found = load_engine()
    if found is None:
        pytest.skip("the text recogniser is not installed (pip install -e '.[prereview]')")
    return found
