"""The console's forms: msgspec Structs read from URL-encoded bodies, each text checked as
the API checks its bodies (no control characters; several lines only where a person writes
a paragraph)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.text import text_problem

Id = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
Reason = Annotated[str, msgspec.Meta(min_length=2, max_length=500)]
Paragraph = Annotated[str, msgspec.Meta(min_length=2, max_length=1000)]
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
# Fields a person writes a paragraph in (a textarea); every other text is one line.
PARAGRAPHS = frozenset({"reason", "answer", "note", "evidence"})


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
