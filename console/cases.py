"""The dispatcher's cases: complaints (answered by their deadline; those taken by phone, in
person or by letter recorded here), bad ratings' cases (verified by a call-back, then
answered), the town's ratings and appeals against them.

The same app services as the API's dispatcher routes (app/ratings), the same scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal, cast

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import errors
from app.accounts import staff
from app.accounts.console import ConsoleUser
from app.kinds import AnswerKind, AppealReason
from app.models import Upload
from app.models.ratings import AnsweredVia, StaffChannel
from app.ratings import complaints, rectification
from app.ratings import service as ratings
from app.ratings.outputs import ANSWERED_VIA_NAMES, CHANNEL_NAMES
from app.text import text_problem
from app.uploads.service import complete_upload, create_upload
from console.forms import FILE_FORM, FORM, Form, OptionalText, Paragraph, QueryId, optional_id
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
STAFF_CHANNELS = {k: v for k, v in CHANNEL_NAMES.items() if k != "mini_program"}
# A letter's photo and the form's fields: a photo's limit (DAIBAN_STORAGE_MAX_UPLOAD_BYTES)
# and the rest, as for a staff member's card photo.
RECEIVED_MAX_BYTES = 11 * 1024 * 1024
NAMES = {
    "channel_names": CHANNEL_NAMES,
    "staff_channels": STAFF_CHANNELS,
    "answered_via_names": ANSWERED_VIA_NAMES,
    "case_status": CASE_STATUS,
    "complaint_status": COMPLAINT_STATUS,
    "appeal_status": APPEAL_STATUS,
    "appeal_reason": APPEAL_REASON,
    "answer_kind": ANSWER_KIND,
}


class AnswerForm(Form):
    answer: Paragraph
    # For a complainant without the mini-program: how the answer reached them, and a note.
    answered_via: OptionalText = ""
    note: OptionalText = ""


class ComplaintFeedbackForm(Form):
    resolved: Literal["true", "false"]
    note: OptionalText = ""


@dataclass
class ReceivedForm:
    """登记电话/来访/信件投诉: multipart, for the photo of a letter. Its CSRF token is read by
    the middleware before the handler; each text is checked here as a Form's would be."""

    channel: str
    text: str
    name: str = ""
    phone: str = ""
    id_number: str = ""
    anonymous: str = ""
    order_number: str = ""
    agent_id: str = ""
    photo: UploadFile | None = None

    def received(self) -> complaints.Received:
        problems = []
        for field, limit in (
            ("channel", 12),
            ("text", 1000),
            ("name", 20),
            ("phone", 20),
            ("id_number", 18),
            ("anonymous", 5),
            ("order_number", 20),
            ("agent_id", 16),
        ):
            value = getattr(self, field)
            problem = text_problem(value, multiline=field == "text")
            if problem is None and len(value) > limit:
                problem = f"不超过{limit}个字"
            if problem:
                problems.append({"field": field, "message": problem})
        if self.channel not in STAFF_CHANNELS:
            problems.append({"field": "channel", "message": "请选择电话、来访或信件"})
        if problems:
            raise errors.InvalidInput("投诉内容有误", errors=problems)
        return complaints.Received(
            channel=cast(StaffChannel, self.channel),
            text=self.text,
            phone=self.phone or None,
            id_number=self.id_number or None,
            name=self.name or None,
            anonymous=self.anonymous in ("on", "true"),
            order_number=self.order_number.strip() or None,
            agent_id=optional_id(self.agent_id, "agentId"),
        )


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
    found = await ctx.db.run_write(  # audited when it names a complainant without an account
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


async def _cases_page(
    request: Request[Any, Any, Any],
    dispatcher: ConsoleUser,
    show: str,
    error: errors.DomainError | None = None,
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
            "agents": [a for a in staff.town_agents(session, ctx, principal) if not a.disabled],
        }

    found = await ctx.db.run_read(read)
    return Template(
        template_name="cases.html",
        context={"user": dispatcher, "show": show, "error": error, **found, **NAMES},
        status_code=error.status if error else 200,
    )


async def _letter_photo(
    request: Request[Any, Any, Any], user: ConsoleUser, photo: UploadFile | None
) -> list[int]:
    """A letter's photo through the uploads' own steps, as the staff member's upload with
    purpose complaint (checked on completion: a real image or PDF, EXIF removed)."""
    if photo is None or not photo.filename:
        return []
    body = await photo.read()
    if not body:
        return []
    ctx, principal = ctx_of(request), user.principal
    kind = photo.content_type or "application/octet-stream"
    ticket = await ctx.db.run_write(
        lambda s: create_upload(
            s, ctx, principal, purpose="complaint", content_type=kind, size=len(body)
        )
    )
    key = await ctx.db.run_read(
        lambda s: s.scalar(select(Upload.incoming_key).where(Upload.id == ticket.id))
    )
    if key is None:  # taken away meanwhile (cannot be: the form is this request's)
        raise errors.UploadNotReceived()
    await ctx.store.write(key, body, kind)
    await complete_upload(ctx, principal, ticket.id)
    return [ticket.id]


class CasePages(Controller):
    path = "/cases"

    @get(name="console_cases")
    async def cases(
        self,
        request: Request[Any, Any, Any],
        dispatcher: Dispatcher,
        show: FromQuery[Literal["open", "all"]] = "open",
    ) -> Template:
        return await _cases_page(request, dispatcher, show)

    @post(
        "/complaints",
        name="console_complaint_record",
        request_max_body_size=RECEIVED_MAX_BYTES,
        status_code=200,
    )
    async def record_complaint(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[ReceivedForm, FILE_FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        """登记电话/来访/信件投诉, then its page; or the cases page again with the reason
        (an order or agent of another town included: nothing is recorded)."""
        ctx, principal = ctx_of(request), dispatcher.principal
        try:
            received = data.received()
            photos = await _letter_photo(request, dispatcher, data.photo)
            received = replace(received, upload_ids=tuple(photos))
            made = await ctx.db.run_write(lambda s: complaints.record(s, ctx, principal, received))
        except errors.DomainError as exc:
            if exc.status == 401:
                raise
            return await _cases_page(request, dispatcher, "open", exc)
        return Redirect(path=f"/console/cases/complaints/{made.id}?done=recorded", status_code=303)

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
        via = data.answered_via or None
        if via is not None and via not in ANSWERED_VIA_NAMES:
            raise errors.InvalidInput(
                errors=[{"field": "answeredVia", "message": "请选择答复方式"}]
            )
        return await _step(
            request,
            lambda s: complaints.answer(
                s,
                ctx,
                principal,
                complaint_id,
                data.answer,
                cast(AnsweredVia | None, via),
                data.note,
            ),
            "answer",
            lambda error: _complaint_page(request, dispatcher, complaint_id, None, error),
        )

    @post("/complaints/{complaint_id:int}/feedback", name="console_complaint_feedback")
    async def complaint_feedback(
        self,
        request: Request[Any, Any, Any],
        complaint_id: FromPath[int],
        data: Annotated[ComplaintFeedbackForm, FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        """For a complainant without the mini-program: whether the answer resolved it, as
        they said when told."""
        ctx, principal = ctx_of(request), dispatcher.principal
        return await _step(
            request,
            lambda s: complaints.feedback(
                s, ctx, principal, complaint_id, data.resolved == "true", data.note
            ),
            "feedback",
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
