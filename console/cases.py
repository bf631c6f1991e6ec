"""The dispatcher's cases: complaints (answered by their deadline), bad ratings' cases
(verified by a call-back, then answered), the town's ratings and appeals against them.

The same app services as the API's dispatcher routes (app/ratings), the same scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from sqlalchemy.orm import Session

from app import errors
from app.accounts.console import ConsoleUser
from app.kinds import AnswerKind, AppealReason
from app.ratings import complaints, rectification
from app.ratings import service as ratings
from console.forms import FORM, Form, Paragraph, QueryId
from console.session import change_then, ctx_of, error_page

Dispatcher = NamedDependency[ConsoleUser]

CASE_STATUS = {
    "open": "待核实",
    "verified": "已核实，待答复",
    "answered": "已答复，待回访",
    "closed": "已办结",
}
COMPLAINT_STATUS = {"open": "待答复", "answered": "已答复", "closed": "已办结"}
APPEAL_STATUS = {"pending": "待复核", "upheld": "申诉成立", "dismissed": "申诉驳回"}
APPEAL_REASON = {"mistaken": "误评", "malicious": "恶意差评"}
ANSWER_KIND = {"fixed": "已整改", "explained": "作出说明"}
NAMES = {
    "case_status": CASE_STATUS,
    "complaint_status": COMPLAINT_STATUS,
    "appeal_status": APPEAL_STATUS,
    "appeal_reason": APPEAL_REASON,
    "answer_kind": ANSWER_KIND,
}


class AnswerForm(Form):
    answer: Paragraph


class NoteForm(Form):
    note: Paragraph


class CaseAnswerForm(Form):
    kind: AnswerKind
    answer: Paragraph


class AppealForm(Form):
    reason: AppealReason
    evidence: Paragraph


async def _complaint_page(
    request: Request[Any, Any, Any],
    user: ConsoleUser,
    complaint_id: int,
    done: str | None,
    error: errors.DomainError | None,
) -> Template:
    ctx = ctx_of(request)
    found = await ctx.db.run_read(
        lambda s: complaints.complaint_detail(s, ctx, user.principal, complaint_id)
    )
    return Template(
        template_name="complaint.html",
        context={"user": user, "c": found, "done": done, "error": error, **NAMES},
        status_code=error.status if error else 200,
    )


async def _case_page(
    request: Request[Any, Any, Any],
    user: ConsoleUser,
    case_id: int,
    done: str | None,
    error: errors.DomainError | None,
) -> Template:
    """With the resident's name and phone for the call-back: audited, as in the API."""
    ctx = ctx_of(request)
    found = await ctx.db.run_write(
        lambda s: rectification.case_detail(s, ctx, user.principal, case_id)
    )
    return Template(
        template_name="case.html",
        context={"user": user, "c": found, "done": done, "error": error, **NAMES},
        status_code=error.status if error else 200,
    )


async def _step(
    request: Request[Any, Any, Any],
    work: Callable[[Session], Any],
    done: str,
    again: Callable[[errors.DomainError], Awaitable[Template]],
) -> Response[Any]:
    """A step of a case; then back to its page (PRG), or its page again with the reason the
    step was refused."""
    page = request.url.path.rsplit("/", 1)[0]
    return await change_then(request, work, f"{page}?done={done}", again)


class CasePages(Controller):
    path = "/cases"

    @get(name="console_cases")
    async def cases(
        self,
        request: Request[Any, Any, Any],
        dispatcher: Dispatcher,
        show: FromQuery[Literal["open", "all"]] = "open",
    ) -> Template:
        ctx, principal = ctx_of(request), dispatcher.principal

        def read(session: Session) -> dict[str, Any]:
            return {
                "complaints": complaints.complaints(
                    session, ctx, principal, "open" if show == "open" else None
                ),
                "cases": [
                    c
                    for c in rectification.cases(session, ctx, principal, None)
                    if show == "all" or c.status != "closed"
                ],
                "appeals": ratings.appeals(session, principal, None),
            }

        found = await ctx.db.run_read(read)
        return Template(
            template_name="cases.html",
            context={"user": dispatcher, "show": show, **found, **NAMES},
        )

    @get("/complaints/{complaint_id:int}", name="console_complaint")
    async def complaint(
        self,
        request: Request[Any, Any, Any],
        complaint_id: FromPath[int],
        dispatcher: Dispatcher,
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _complaint_page(request, dispatcher, complaint_id, done, None)

    @post("/complaints/{complaint_id:int}/answer", name="console_complaint_answer")
    async def answer_complaint(
        self,
        request: Request[Any, Any, Any],
        complaint_id: FromPath[int],
        data: Annotated[AnswerForm, FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        ctx, principal = ctx_of(request), dispatcher.principal
        return await _step(
            request,
            lambda s: complaints.answer(s, ctx, principal, complaint_id, data.answer),
            "answer",
            lambda error: _complaint_page(request, dispatcher, complaint_id, None, error),
        )

    @get("/rectifications/{case_id:int}", name="console_case")
    async def case(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[int],
        dispatcher: Dispatcher,
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _case_page(request, dispatcher, case_id, done, None)

    @post("/rectifications/{case_id:int}/verify", name="console_case_verify")
    async def verify(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[int],
        data: Annotated[NoteForm, FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        ctx, principal = ctx_of(request), dispatcher.principal
        return await _step(
            request,
            lambda s: rectification.verify(s, ctx, principal, case_id, data.note),
            "verify",
            lambda error: _case_page(request, dispatcher, case_id, None, error),
        )

    @post("/rectifications/{case_id:int}/answer", name="console_case_answer")
    async def answer_case(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[int],
        data: Annotated[CaseAnswerForm, FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        ctx, principal = ctx_of(request), dispatcher.principal
        return await _step(
            request,
            lambda s: rectification.answer(s, ctx, principal, case_id, data.kind, data.answer),
            "answer",
            lambda error: _case_page(request, dispatcher, case_id, None, error),
        )


class RatingPages(Controller):
    path = "/ratings"

    @get(name="console_ratings")
    async def ratings(
        self,
        request: Request[Any, Any, Any],
        dispatcher: Dispatcher,
        grade: FromQuery[int | None] = None,
        cursor: QueryId = None,
        done: FromQuery[str | None] = None,
    ) -> Template:
        ctx = ctx_of(request)
        if grade is not None and not 1 <= grade <= 5:
            raise errors.InvalidInput()
        found = await ctx.db.run_read(
            lambda s: ratings.staff_ratings(
                s, dispatcher.principal, grade=grade, cursor=cursor, limit=30
            )
        )
        return Template(
            template_name="ratings.html",
            context={"user": dispatcher, "ratings": found, "grade": grade, "done": done, **NAMES},
        )

    @post("/{rating_id:int}/appeal", name="console_rating_appeal")
    async def appeal(
        self,
        request: Request[Any, Any, Any],
        rating_id: FromPath[int],
        data: Annotated[AppealForm, FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        ctx, principal = ctx_of(request), dispatcher.principal

        async def again(exc: errors.DomainError) -> Response[Any]:
            return error_page(request, exc.status, exc.title, exc.detail, exc.extra.get("errors"))

        return await change_then(
            request,
            lambda s: ratings.appeal(s, ctx, principal, rating_id, data.reason, data.evidence, []),
            "/console/ratings?done=appeal",
            again,
        )
