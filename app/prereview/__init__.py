"""智能预审: reading photographed documents on the server itself, offline.

`read_document(image_bytes) -> Reading` tells what a photo shows (an ID card's front or
back, a household-register page, a disability certificate, a bank card or passbook, another
paper, or nothing readable) and reads their fields; `check(reading, expected_kind,
expected_id_number, on_date, expected_name)` turns a reading into findings for the material
it was given as (wrong side, expired, someone else's number, a card number that fails its
check, unreadable). Pure and synchronous, no database: the text recogniser is the optional
extra `prereview` (RapidOCR on ONNX Runtime), and without it every reading says 未预审. The
service's use of it is app/uploads/prereviews.py; docs/prereview.md has what it reads and
how well.
"""

from app.prereview.checks import ExpectedKind, Finding, FindingCode, check
from app.prereview.engine import Engine, OcrLine, load_engine, open_engine
from app.prereview.idnumber import check_char, is_valid
from app.prereview.reading import DocumentKind, Reading, interpret, read_document

__all__ = [
    "DocumentKind",
    "Engine",
    "ExpectedKind",
    "Finding",
    "FindingCode",
    "OcrLine",
    "Reading",
    "check",
    "check_char",
    "interpret",
    "is_valid",
    "load_engine",
    "open_engine",
    "read_document",
]
