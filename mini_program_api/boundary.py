"""Checks every request passes before its handler's parameters are parsed, for every route at
once: path numbers that no id can have, control characters in paths and queries, and JSON
bodies nested deeper than any of ours.

Request bodies check their own fields (mini_program_api/schemas.py: `Input`); query parameters
carry their bounds in their declarations, and tests/test_boundary.py holds every route to that.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request

from app import errors
from app.text import text_problem
from mini_program_api.schemas import MAX_ID

# Our deepest body is three levels (materials -> code -> ids); 32 leaves room and refuses the
# thousand-level bodies that would exhaust the decoder's recursion.
MAX_JSON_DEPTH = 32
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

BodyTooDeep = errors.error("body_too_deep", 400, "提交的内容层次太深")

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_INNERMOST_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when the JSON in `body` nests more than `limit` arrays and objects.

    Each pass removes the innermost pairs of brackets, in C, so a megabyte takes a few
    milliseconds; a body with fewer brackets than `limit` is never scanned. Malformed JSON is
    left to the decoder, which says so."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    for _ in range(limit):
        shorter = _INNERMOST_PAIR.sub(b"", brackets)
        if not shorter or shorter == brackets:
            return False
        brackets = shorter
    return True


def _takes_json(request: Request[Any, Any, Any]) -> bool:
    field = request.route_handler.parsed_data_field
    if field is None:
        return False
    media_type = getattr(field.kwarg_definition, "media_type", None)
    return media_type is None or "json" in str(getattr(media_type, "value", media_type))


async def check_request(request: Request[Any, Any, Any]) -> None:
    """Litestar's before_request hook, on the app: runs for every route."""
    for value in request.path_params.values():
        if (isinstance(value, int) and not -MAX_ID - 1 <= value <= MAX_ID) or (
            isinstance(value, str) and text_problem(value)
        ):
            raise errors.NotFound()
    if request.scope["query_string"]:
        problems = [
            {"field": name, "message": problem}
            for name, value in request.query_params.multi_items()
            if (problem := text_problem(name) or text_problem(value))
        ]
        if problems:
            raise errors.InvalidInput(errors=problems)
    if request.method in BODY_METHODS and _takes_json(request):
        if too_deep(await request.body()):
            raise BodyTooDeep()
