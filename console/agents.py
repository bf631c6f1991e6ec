"""The dispatcher's agents: who is on duty, on leave until when, how much each has open;
setting duty and leave, and handing one agent's open orders to another (一键移交).

The same app services as the API's dispatcher routes (app/dispatch/service.py)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from sqlalchemy.orm import Session

from app import errors
from app.accounts.console import ConsoleUser
from app.dispatch import board, service
from app.kinds import DutyStatus
from console.forms import (
    FORM,
    Form,
    OptionalDate,
    OptionalId,
    OptionalText,
    optional_date,
    optional_id,
    optional_text,
)
from console.session import change_then, ctx_of

Dispatcher = NamedDependency[ConsoleUser]


class DutyForm(Form):
    status: DutyStatus
    leave_until: OptionalDate = ""


class RuleForm(Form):
    auto_dispatch: bool


class HandOverForm(Form):
    to_agent_id: OptionalId = ""
    reason: OptionalText = ""


async def _page(
    request: Request[Any, Any, Any],
    user: ConsoleUser,
    done: str | None,
    error: errors.DomainError | None,
) -> Template:
    ctx = ctx_of(request)

    def read(session: Session) -> tuple[list[board.AgentLoad], service.TownRule]:
        agents = board.board(session, ctx, user.principal).agents
        return agents, service.town_rule(session, user.principal)

    agents, rule = await ctx.db.run_read(read)
    return Template(
        template_name="agents.html",
        context={
            "user": user,
            "agents": agents,
            "rule": rule,
            "today": ctx.today(),
            "done": done,
            "error": error,
        },
        status_code=error.status if error else 200,
    )


class AgentPages(Controller):
    path = "/agents"

    @get(name="console_agents")
    async def agents(
        self,
        request: Request[Any, Any, Any],
        dispatcher: Dispatcher,
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await _page(request, dispatcher, done, None)

    async def _change(
        self, request: Request[Any, Any, Any], user: ConsoleUser, work: Any, done: str
    ) -> Response[Any]:
        return await change_then(
            request,
            work,
            f"/console/agents?done={done}",
            lambda exc: _page(request, user, None, exc),
        )

    @post("/{agent_id:int}/duty", name="console_agent_duty")
    async def duty(
        self,
        request: Request[Any, Any, Any],
        agent_id: FromPath[int],
        data: Annotated[DutyForm, FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        ctx = ctx_of(request)
        change = service.DutyChange(
            status=data.status, leave_until=optional_date(data.leave_until, "leave_until")
        )
        return await self._change(
            request,
            dispatcher,
            lambda s: service.set_duty(s, ctx, dispatcher.principal, agent_id, change),
            "duty",
        )

    @post("/rule", name="console_town_rule")
    async def rule(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[RuleForm, FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        """自动派单 (A post, then B post, then the pool) or 人工派单, from the next order on."""
        ctx = ctx_of(request)
        return await self._change(
            request,
            dispatcher,
            lambda s: service.set_town_rule(s, ctx, dispatcher.principal, data.auto_dispatch),
            "rule",
        )

    @post("/{agent_id:int}/hand-over", name="console_agent_hand_over")
    async def hand_over(
        self,
        request: Request[Any, Any, Any],
        agent_id: FromPath[int],
        data: Annotated[HandOverForm, FORM],
        dispatcher: Dispatcher,
    ) -> Response[Any]:
        ctx = ctx_of(request)
        return await self._change(
            request,
            dispatcher,
            lambda s: service.hand_over_to(
                s,
                ctx,
                dispatcher.principal,
                agent_id,
                optional_id(data.to_agent_id, "to_agent_id"),
                optional_text(data.reason),
            ),
            "hand_over",
        )
