"""Ratings, rectification, appeals, complaints and satisfaction over HTTP, role by role."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.types import ControllerRouterHandler

from app.kinds import AnswerKind, AppealReason, AppealStatus, CaseStatus, ComplaintStatus
from app.models import Account
from app.models.ratings import AnsweredVia, StaffChannel
from app.ratings import complaints, rectification, stats
from app.ratings import service as ratings
from app.ratings.outputs import AppealView, CaseView, ComplaintView, MyRating, RatingView
from mini_program_api.deps import Caller, Ctx, require_role
from mini_program_api.params import AgentId, Cursor, Limit, Period
from mini_program_api.schemas import MULTILINE, Id, Input, Name, Note, UploadIds

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, extra=MULTILINE)]
Grade = Annotated[int, msgspec.Meta(ge=1, le=5)]


class RatingInput(Input):
    grade: Grade  # 5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意
    tags: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=20)]], msgspec.Meta(max_length=8)
    ] = []
    comment: Note | None = None


class RatingCardInput(Input, kw_only=True):
    """A paper rating card (评价卡) the resident filled in and signed, typed in by staff."""

    grade: Grade
    tags: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=20)]], msgspec.Meta(max_length=8)
    ] = []
    comment: Note | None = None
    # Photos of the signed card: the recorder's own finished uploads (at least one).
    card_upload_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=3)]


class FollowUpInput(Input):
    grade: Literal["satisfied", "basic", "unsatisfied"]  # 满意, 基本满意, 不满意
    comment: Note | None = None


class ComplaintInput(Input, kw_only=True):
    order_id: Id | None = None
    agent_id: Id | None = None
    text: Text
    upload_ids: UploadIds = []


class StaffComplaintInput(Input, kw_only=True):
    """A complaint taken by phone, in person or by letter, recorded for the complainant."""

    channel: StaffChannel  # 电话, 来访, 信件
    text: Text
    # Who complained: a phone or an ID number (looked up, audited), or anonymous.
    phone: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    id_number: Annotated[str, msgspec.Meta(max_length=18)] | None = None
    name: Name | None = None
    anonymous: bool = False
    # What it is about: an order (by id or by its number) and/or an agent of the town.
    order_id: Id | None = None
    order_number: Annotated[str, msgspec.Meta(min_length=1, max_length=20)] | None = None
    agent_id: Id | None = None
    upload_ids: UploadIds = []  # photos of a letter: the staff member's own, purpose complaint


class FeedbackInput(Input):
    resolved: bool
    comment: Note | None = None


class AppealInput(Input):
    reason: AppealReason  # 误评, 恶意差评
    evidence: Text
    evidence_upload_ids: UploadIds = []


class DecisionInput(Input):
    upheld: bool
    note: Text


class NoteInput(Input):
    note: Text


class CaseAnswerInput(Input):
    kind: AnswerKind  # 已整改, 作出说明
    answer: Text


class AnswerInput(Input, kw_only=True):
    answer: Text
    # Required when the complainant has no mini-program account: 电话回复, 当面答复, 书面答复,
    # 公示答复; with a note (when, to whom).
    answered_via: AnsweredVia | None = None
    note: Note | None = None


class ResidentRatingController(Controller):
    path = "/orders"
    tags = ["resident 群众"]
    guards = [require_role("resident")]

    @post("/{order_id:int}/rating", summary="评价本次代办 (交回后, 每件一次)")
    async def rate(
        self, order_id: FromPath[int], data: JSONBody[RatingInput], ctx: Ctx, principal: Caller
    ) -> MyRating:
        # The text check is a network call in live mode: before the write, never inside it.
        openid = await ctx.db.run_read(
            lambda s: s.get(Account, principal.account_id).openid  # type: ignore[union-attr]
        )
        checked = await ratings.check_comment(ctx, openid, data.comment)
        request = ratings.RatingInput(grade=data.grade, tags=data.tags, comment=data.comment)
        return await ctx.db.run_write(
            lambda s: ratings.rate(s, ctx, principal, order_id, request, checked)
        )

    @get("/{order_id:int}/rating", summary="我的评价及差评整改情况")
    async def mine(self, order_id: FromPath[int], ctx: Ctx, principal: Caller) -> MyRating:
        return await ctx.db.run_read(lambda s: ratings.my_rating(s, principal, order_id))

    @post(
        "/{order_id:int}/rating/follow-up",
        status_code=200,
        summary="回访: 对差评整改答复表态 (满意/基本满意/不满意)",
    )
    async def follow_up(
        self, order_id: FromPath[int], data: JSONBody[FollowUpInput], ctx: Ctx, principal: Caller
    ) -> CaseView:
        return await ctx.db.run_write(
            lambda s: rectification.follow_up(s, ctx, principal, order_id, data.grade, data.comment)
        )


class ResidentComplaintController(Controller):
    path = "/complaints"
    tags = ["resident 群众"]
    guards = [require_role("resident")]

    @post(
        summary="投诉办件或代办员 (镇中心当日或次日答复)",
        opt={"limits": ("complaints_account",)},
    )
    async def complain(
        self, data: JSONBody[ComplaintInput], ctx: Ctx, principal: Caller
    ) -> ComplaintView:
        return await ctx.db.run_write(
            lambda s: complaints.complain(
                s,
                ctx,
                principal,
                order_id=data.order_id,
                agent_id=data.agent_id,
                text=data.text,
                upload_ids=data.upload_ids,
            )
        )

    @get(summary="我的投诉")
    async def mine(self, ctx: Ctx, principal: Caller) -> list[ComplaintView]:
        return await ctx.db.run_read(lambda s: complaints.complaints(s, ctx, principal, None))

    @get("/{complaint_id:int}", summary="投诉详情与答复")
    async def detail(
        self, complaint_id: FromPath[int], ctx: Ctx, principal: Caller
    ) -> ComplaintView:
        return await ctx.db.run_read(
            lambda s: complaints.complaint_detail(s, ctx, principal, complaint_id)
        )

    @post("/{complaint_id:int}/feedback", status_code=200, summary="答复是否解决了问题")
    async def feedback(
        self,
        complaint_id: FromPath[int],
        data: JSONBody[FeedbackInput],
        ctx: Ctx,
        principal: Caller,
    ) -> ComplaintView:
        return await ctx.db.run_write(
            lambda s: complaints.feedback(
                s, ctx, principal, complaint_id, data.resolved, data.comment
            )
        )


@get("/ratings", summary="我收到的评价 (不显示评价人)")
async def agent_ratings(
    ctx: Ctx, principal: Caller, cursor: Cursor = None, limit: Limit = 20
) -> list[RatingView]:
    return await ctx.db.run_read(
        lambda s: ratings.staff_ratings(s, principal, cursor=cursor, limit=limit)
    )


@post(
    "/orders/{order_id:int}/rating-card",
    summary="登记纸质评价卡 (群众签字的评价卡, 附照片; 统计中单列)",
)
async def record_rating_card(
    order_id: FromPath[int], data: JSONBody[RatingCardInput], ctx: Ctx, principal: Caller
) -> RatingView:
    request = ratings.RatingInput(grade=data.grade, tags=data.tags, comment=data.comment)
    return await ctx.db.run_write(
        lambda s: ratings.record_card(
            s, ctx, principal, order_id, request, tuple(data.card_upload_ids)
        )
    )


class StaffRatingController(Controller):
    """The dispatcher's (own town) and the admin's (district) side."""

    @get("/ratings", summary="评价列表 (可按分数、代办员筛选)")
    async def list_ratings(
        self,
        ctx: Ctx,
        principal: Caller,
        grade: Annotated[int | None, QueryParameter(ge=1, le=5, description="1 到 5 分")] = None,
        agent_id: AgentId = None,
        cursor: Cursor = None,
        limit: Limit = 20,
    ) -> list[RatingView]:
        return await ctx.db.run_read(
            lambda s: ratings.staff_ratings(
                s, principal, grade=grade, agent_id=agent_id, cursor=cursor, limit=limit
            )
        )

    @get("/appeals", summary="差评申诉")
    async def appeals(
        self, ctx: Ctx, principal: Caller, status: FromQuery[AppealStatus | None] = None
    ) -> list[AppealView]:
        return await ctx.db.run_read(lambda s: ratings.appeals(s, principal, status))

    @get("/rectifications", summary="差评整改事项")
    async def cases(
        self, ctx: Ctx, principal: Caller, status: FromQuery[CaseStatus | None] = None
    ) -> list[CaseView]:
        return await ctx.db.run_read(lambda s: rectification.cases(s, ctx, principal, status))

    @get("/rectifications/{case_id:int}", summary="整改事项详情 (含评价人姓名和电话, 用于回访)")
    async def case(self, case_id: FromPath[int], ctx: Ctx, principal: Caller) -> CaseView:
        return await ctx.db.run_write(  # audited: it names the resident
            lambda s: rectification.case_detail(s, ctx, principal, case_id)
        )

    @get("/complaints", summary="投诉")
    async def complaints(
        self, ctx: Ctx, principal: Caller, status: FromQuery[ComplaintStatus | None] = None
    ) -> list[ComplaintView]:
        return await ctx.db.run_read(lambda s: complaints.complaints(s, ctx, principal, status))

    @get(
        "/complaints/{complaint_id:int}",
        summary="投诉详情 (未使用小程序的投诉人显示完整电话, 用于答复)",
    )
    async def complaint(
        self, complaint_id: FromPath[int], ctx: Ctx, principal: Caller
    ) -> ComplaintView:
        return await ctx.db.run_write(  # audited when it names a complainant without an account
            lambda s: complaints.complaint_detail(s, ctx, principal, complaint_id)
        )

    @post(
        "/complaints",
        summary="登记电话、来访或信件投诉 (按电话或身份证号查找投诉人, 或匿名; 当日或次日答复)",
    )
    async def record_complaint(
        self, data: JSONBody[StaffComplaintInput], ctx: Ctx, principal: Caller
    ) -> ComplaintView:
        received = complaints.Received(
            channel=data.channel,
            text=data.text,
            phone=data.phone,
            id_number=data.id_number,
            name=data.name,
            anonymous=data.anonymous,
            order_id=data.order_id,
            order_number=data.order_number,
            agent_id=data.agent_id,
            upload_ids=tuple(data.upload_ids),
        )
        return await ctx.db.run_write(lambda s: complaints.record(s, ctx, principal, received))

    @get("/satisfaction", summary="满意度统计: 按代办员、村、镇或事项 (from、to 为日期, 含两端)")
    async def satisfaction(
        self,
        ctx: Ctx,
        principal: Caller,
        period: Period,
        by: FromQuery[stats.Group] = "agent",
    ) -> stats.Satisfaction:
        return await ctx.db.run_long_read(
            lambda s: stats.satisfaction(s, ctx, principal, *period, by), may_lag=True
        )


class DispatcherRatingController(StaffRatingController):
    @post("/ratings/{rating_id:int}/appeal", summary="对误评、恶意差评提出申诉 (附证据)")
    async def appeal(
        self, rating_id: FromPath[int], data: JSONBody[AppealInput], ctx: Ctx, principal: Caller
    ) -> AppealView:
        return await ctx.db.run_write(
            lambda s: ratings.appeal(
                s,
                ctx,
                principal,
                rating_id,
                data.reason,
                data.evidence,
                data.evidence_upload_ids,
            )
        )

    @post("/rectifications/{case_id:int}/verify", status_code=200, summary="核实 (已回访群众)")
    async def verify(
        self, case_id: FromPath[int], data: JSONBody[NoteInput], ctx: Ctx, principal: Caller
    ) -> CaseView:
        return await ctx.db.run_write(
            lambda s: rectification.verify(s, ctx, principal, case_id, data.note)
        )

    @post("/rectifications/{case_id:int}/answer", status_code=200, summary="整改答复群众")
    async def answer_case(
        self, case_id: FromPath[int], data: JSONBody[CaseAnswerInput], ctx: Ctx, principal: Caller
    ) -> CaseView:
        return await ctx.db.run_write(
            lambda s: rectification.answer(s, ctx, principal, case_id, data.kind, data.answer)
        )

    @post("/complaints/{complaint_id:int}/answer", status_code=200, summary="答复投诉")
    async def answer_complaint(
        self,
        complaint_id: FromPath[int],
        data: JSONBody[AnswerInput],
        ctx: Ctx,
        principal: Caller,
    ) -> ComplaintView:
        return await ctx.db.run_write(
            lambda s: complaints.answer(
                s, ctx, principal, complaint_id, data.answer, data.answered_via, data.note
            )
        )

    @post(
        "/complaints/{complaint_id:int}/feedback",
        status_code=200,
        summary="代未使用小程序的投诉人记录答复是否解决了问题",
    )
    async def complaint_feedback(
        self,
        complaint_id: FromPath[int],
        data: JSONBody[FeedbackInput],
        ctx: Ctx,
        principal: Caller,
    ) -> ComplaintView:
        return await ctx.db.run_write(
            lambda s: complaints.feedback(
                s, ctx, principal, complaint_id, data.resolved, data.comment
            )
        )


class AdminRatingController(StaffRatingController):
    @post("/appeals/{appeal_id:int}/decide", status_code=200, summary="复核申诉: 支持或驳回")
    async def decide(
        self, appeal_id: FromPath[int], data: JSONBody[DecisionInput], ctx: Ctx, principal: Caller
    ) -> AppealView:
        return await ctx.db.run_write(
            lambda s: ratings.decide(s, ctx, principal, appeal_id, data.upheld, data.note)
        )


RESIDENT_ROUTES = [ResidentRatingController, ResidentComplaintController]
AGENT_ROUTES: list[ControllerRouterHandler] = [agent_ratings, record_rating_card]
DISPATCHER_ROUTES: list[ControllerRouterHandler] = [DispatcherRatingController, record_rating_card]
ADMIN_ROUTES = [AdminRatingController]
