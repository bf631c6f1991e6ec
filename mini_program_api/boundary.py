"""Checks every request passes before its handler's parameters are parsed, for every route at
once: path numbers that no id can have, and control characters in paths and queries.

Request bodies check their own fields (mini_program_api/schemas.py: `Input`); query parameters
carry their bounds in their declarations, and tests/api/test_boundary.py holds every route to that.
A body nested too deep for the decoder (a thousand arrays in 2 kB) ends its decoding with a
RecursionError, answered 400 `body_too_deep` (mini_program_api/problems.py): counting the
depth beforehand would cost a pass over every body, and a careless pass is quadratic.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from app import errors
from app.text import text_problem
from mini_program_api.schemas import MAX_ID


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
