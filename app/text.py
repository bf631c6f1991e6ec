"""Which text may be stored, and how stored text goes into a spreadsheet.

Stored text holds no control characters: a NUL breaks PostgreSQL (which refuses 0x00), the
xlsx writer (which refuses every C0 character but tab and line breaks) and any screen. Tab and
line breaks are allowed only in fields meant to hold several lines (notes, reasons, answers).
Text already stored, from before this rule or from another path, is cleaned again on its way
into a spreadsheet, so no row can break a ledger or an export.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any

from openpyxl import load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

# C0 controls, DEL, and the two non-characters XML refuses.
_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f\ufffe\uffff]")
_MULTI_LINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
# What openpyxl refuses in a cell (its ILLEGAL_CHARACTERS_RE), and the XML non-characters.
_NOT_IN_SPREADSHEET = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

CONTROL_MESSAGE = "不能含有控制字符(如 NUL)"
LINE_BREAK_MESSAGE = "不能含有换行、制表符或其他控制字符"


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why `value` may not be stored, in Chinese, or None when it may."""
    found = (_MULTI_LINE if multiline else _SINGLE_LINE).search(value)
    if found is None:
        return None
    if not multiline and found.group() in "\t\n\r":
        return LINE_BREAK_MESSAGE
    return CONTROL_MESSAGE


def for_spreadsheet(value: str) -> str:
    return _NOT_IN_SPREADSHEET.sub("", value)


def sheet_row(sheet: Worksheet | WriteOnlyWorksheet, values: list[Any]) -> list[Any]:
    """A row ready for `sheet.append`: text cleaned, and text that starts like a formula kept
    as text (a name such as "=HYPERLINK(...)" must not run when the ledger is opened)."""
    row: list[Any] = []
    for value in values:
        if isinstance(value, str):
            value = for_spreadsheet(value)
            if value.startswith("="):
                cell = WriteOnlyCell(sheet, value=value)
                cell.data_type = "s"
                value = cell
        row.append(value)
    return row


def cell_text(value: Any) -> str:
    """A spreadsheet cell (or a CSV field) as stripped text: empty for an empty cell, and a
    number Excel kept as a float (370406101000.0, shown 3.70406101E11) written out whole."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def sheet_rows(data: bytes, limit: int, *, max_col: int | None = None) -> list[list[Any]] | None:
    """The rows of an xlsx file's first sheet, its header row first, reading no further than
    one row past `limit` rows below the header (a small file may unpack to millions), and no
    further right than `max_col`; None when it is not a workbook openpyxl can read."""
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        rows = book.worksheets[0].iter_rows(values_only=True, max_col=max_col)
        return [list(row) for row in islice(rows, limit + 2)]
    except Exception:
        return None


def header_positions(
    row: Sequence[Any], columns: Mapping[str, Sequence[str]]
) -> dict[str, int | None]:
    """Where each column is in a header row, by the first of its names found there."""
    header = [cell_text(cell) for cell in row]
    return {
        key: next((header.index(name) for name in names if name in header), None)
        for key, names in columns.items()
    }
