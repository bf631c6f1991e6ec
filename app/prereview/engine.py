"""The text recogniser: RapidOCR (PP-OCRv6 small, Chinese) on ONNX Runtime, on the CPU.

It is the optional extra `prereview` (pyproject.toml): without it `load_engine()` answers
None and every reading says 未预审 (engine_missing). Nothing here ever raises ImportError
to a caller, and nothing is downloaded: the three models are the files the rapidocr wheel
carries, named one by one, and their absence is the engine's absence (RapidOCR would fetch
a missing model from the internet; given a path, it does not).

`load_engine()` keeps one engine per process, opened on first use: 0.5 s to import ONNX
Runtime and OpenCV and load the models, some 80 MB resident, and 150-250 MB more while a
photo is read (given back to the system after each). `threads` is ONNX Runtime's intra-op
threads, one by default: a photo takes one core. An engine reads one photo at a time (a
lock); two photos at once need two engines (`open_engine()`).
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.metadata
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from PIL import Image

log = logging.getLogger("daiban.prereview")

MODULE: Final = "rapidocr"
# The models inside the rapidocr wheel (3.10): detection, direction of a line, recognition.
MODEL_FILES: Final = {
    "Det.model_path": "PP-OCRv6_det_small.onnx",
    "Cls.model_path": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    "Rec.model_path": "PP-OCRv6_rec_small.onnx",
}


DET_SIDE: Final = 736  # bench/prereview.py --det-side: 736 reads as well as 960 and 1280, faster


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One line of text found: its text, the recogniser's confidence (0-1), and its box as
    four corners (x, y) in the image's pixels, clockwise from the top left."""

    text: str
    score: float
    box: tuple[tuple[float, float], ...]


class Engine(Protocol):
    name: str

    def __call__(self, image: Image.Image) -> list[OcrLine]: ...


class RapidEngine:
    """RapidOCR with the wheel's own models, its logging quiet, on `threads` threads."""

    def __init__(self, module: Any, models: Path, threads: int, det_side: int = DET_SIDE) -> None:
        params: dict[str, Any] = {
            "Global.log_level": "error",
            # Text is found on a copy at most `det_side` on its longer side (the lines are
            # then read from the photo as given): most of a photo's time is finding text.
            "Det.limit_type": "max",
            "Det.limit_side_len": det_side,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        params.update({key: str(models / name) for key, name in MODEL_FILES.items()})
        self._ocr = module.RapidOCR(params=params)
        # RapidOCR loads its models on first use; load them now, so that a broken ONNX
        # Runtime is found here (no engine) and not on a resident's photo.
        for loader in ("_load_det_model", "_load_cls_model", "_load_rec_model"):
            getattr(self._ocr, loader)()
        self._lock = threading.Lock()
        version = importlib.metadata.version("rapidocr")
        self.name = f"rapidocr {version} (PP-OCRv6 small)"
        # PP-OCRv6 reads Chinese in both scripts and now and then gives a character its
        # traditional form (國 for 国, 漢 for 汉); cards are printed in simplified ones.
        self._simplify: Callable[[str], str] = str
        try:
            self._simplify = importlib.import_module("opencc").OpenCC("t2s").convert
        except Exception as exc:  # part of the extra; without it, lines are taken as read
            log.warning("prereview: no traditional-to-simplified conversion (%s)", exc)

    def __call__(self, image: Image.Image) -> list[OcrLine]:
        # One photo at a time per engine: RapidOCR keeps per-call state on its object.
        with self._lock:
            try:
                result = self._ocr(image.convert("RGB"))
            finally:
                _trim()
        texts: Sequence[str] = result.txts or ()
        scores: Sequence[float] = result.scores or ()
        boxes = result.boxes if result.boxes is not None else ()
        return [
            OcrLine(self._simplify(str(t)), float(s), tuple((float(x), float(y)) for x, y in box))
            for t, s, box in zip(texts, scores, boxes, strict=True)
        ]


def _trim() -> None:
    """Give the memory a reading freed back to the system (glibc keeps it otherwise): a
    photo takes some 150-250 MB while it is read, which would stay with the process."""
    if _libc is not None:
        _libc.malloc_trim(0)


try:
    _libc: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc
    _libc = None

_lock = threading.Lock()
_engines: dict[int, Engine | None] = {}
_missing_reason = ""


def load_engine(threads: int = 1) -> Engine | None:
    """The process's engine for `threads`, opened once; None when it is not installed."""
    with _lock:
        if threads not in _engines:
            _engines[threads] = open_engine(threads)
        return _engines[threads]


def open_engine(threads: int = 1, det_side: int = DET_SIDE) -> Engine | None:
    """A new engine, or None when rapidocr (or ONNX Runtime, OpenCV, numpy under it) cannot
    be imported, or its models are not where its wheel puts them. Never raises."""
    global _missing_reason
    try:
        rapidocr = importlib.import_module(MODULE)
        models = Path(str(rapidocr.__file__)).parent / "models"
        absent = [n for n in MODEL_FILES.values() if not (models / n).is_file()]
        if absent:
            raise FileNotFoundError(f"models not in the wheel: {', '.join(absent)}")
        engine = RapidEngine(rapidocr, models, threads, det_side)
    except ImportError as exc:
        _missing_reason = str(exc) or f"{MODULE} is not installed"
        log.info("prereview: no text recogniser (%s)", _missing_reason)
        return None
    except Exception as exc:  # a broken install: the service goes on without it
        _missing_reason = f"{type(exc).__name__}: {exc}"
        log.warning("prereview: the text recogniser failed to load (%s)", _missing_reason)
        return None
    _missing_reason = ""
    return engine


def missing_reason() -> str:
    """Why the last attempt found no engine ("" when it found one)."""
    return _missing_reason
