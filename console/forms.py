"""The console's forms: msgspec Structs read from URL-encoded bodies, each text checked as
the API checks its bodies (no control characters; several lines only where a person writes
a paragraph)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

import msgspec
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter

from app import errors
from app.orders.states import STATUS_NAMES
from app.text import text_problem

Id = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
# An id in a page's address (a filter, a page's cursor): the same bounds, where Litestar reads them.
QueryId = Annotated[int | None, QueryParameter(ge=1, le=2**53)]
Reason = Annotated[str, msgspec.Meta(min_length=2, max_length=500)]
Paragraph = Annotated[str, msgspec.Meta(min_length=2, max_length=1000)]
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
FILE_FORM = Body(media_type=RequestEncodingType.MULTI_PART)
# A browser sends an input left empty as "": optional fields are text, read by the helpers.
OptionalDate = Annotated[str, msgspec.Meta(max_length=10, pattern=r"^(\d{4}-\d{2}-\d{2})?$")]
OptionalId = Annotated[str, msgspec.Meta(max_length=16, pattern=r"^([1-9]\d{0,15})?$")]
OptionalText = Annotated[str, msgspec.Meta(max_length=500)]
# Fields a person writes a paragraph in (a textarea); every other text is one line.
PARAGRAPHS = frozenset({"reason", "answer", "note", "evidence", "days", "document"})


@dataclass
class FileForm:
    """A form that sends one file (multipart): a staff sheet, a photo, a catalogue file.
    Its CSRF token is read by the middleware before the handler."""

    file: UploadFile


class Form(msgspec.Struct, kw_only=True):
    # Browsers send the CSRF token as a field of the form; it is checked before the handler.
    _csrf_token: str | None = msgspec.field(default=None, name="_csrf_token")

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, str):
                problem = text_problem(value, multiline=name in PARAGRAPHS)
                if problem:
                    raise ValueError(f"{name}: {problem}")


class AssignForm(Form):
    agent_id: Id


class ReassignForm(Form):
    agent_id: Id
    reason: Reason


class ReasonForm(Form):
    reason: Reason


def optional_date(value: str, field: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise errors.InvalidInput(errors=[{"field": field, "message": "日期不存在"}]) from None


def optional_id(value: str, field: str) -> int | None:
    """An id picked from a list whose first choice, 全部 or a default, is sent as ""."""
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 2**53:
        raise errors.InvalidInput(errors=[{"field": field, "message": "取值不在允许范围内"}])
    return int(value)


def optional_text(value: str) -> str | None:
    return value.strip() or None


def optional_status(value: str | None) -> str | None:
    """A status picked from a list whose first choice, 全部, is sent as ""."""
    if not value:
        return None
    if value not in STATUS_NAMES:
        raise errors.InvalidInput(errors=[{"field": "status", "message": "取值不在允许范围内"}])
    return value
