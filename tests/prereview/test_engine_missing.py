"""Without the recogniser (the `prereview` extra not installed) nothing raises: readings say
未预审. Its absence is made real by blocking its import (None in sys.modules makes Python's
import raise ImportError, as for a package that is not there)."""

from __future__ import annotations

import io
import sys

import pytest
from PIL import Image

from app.prereview import check, engine, open_engine, read_document


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 200, 200)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize("module", ["rapidocr", "onnxruntime"])
def test_without_the_recogniser_readings_say_not_reviewed(
    monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    if module == "onnxruntime":
        # rapidocr imports ONNX Runtime when its first engine is made: a fresh rapidocr
        for name in [m for m in sys.modules if m.startswith("rapidocr")]:
            monkeypatch.delitem(sys.modules, name)
        if "rapidocr" not in sys.modules and not _importable("rapidocr"):
            pytest.skip("rapidocr itself is not installed")
    found = open_engine()
    assert found is None
    assert module in engine.missing_reason()
    reading = read_document(jpeg(), found)
    assert reading.status == "engine_missing"
    assert reading.kind is None
    assert "未预审" in reading.note
    [finding] = check(reading, "id_card_front", "370406195603081222", reading_day())
    assert finding.code == "engine_missing"
    assert finding.severity == "info"


def test_no_engine_given_reads_nothing() -> None:
    reading = read_document(b"not even an image", None)
    assert reading.status == "engine_missing"


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def reading_day():  # type: ignore[no-untyped-def]
    from datetime import date

    return date(2026, 12, 1)
