"""Query and header parameters the routes share, each with its bounds declared where Litestar
reads them (QueryParameter, HeaderParameter): constraints written as msgspec.Meta inside an
optional query type are dropped by Litestar, both at run time and in the OpenAPI.
tests/api/test_boundary.py holds every route's query parameters to having bounds."""

from __future__ import annotations

from datetime import date
from typing import Annotated, NamedTuple, TypeAlias

from litestar.di import NamedDependency
from litestar.params import HeaderParameter, QueryParameter

from app.periods import check_dates
from mini_program_api.schemas import MAX_ID

VillageId = Annotated[
    int | None, QueryParameter(name="villageId", ge=1, le=MAX_ID, description="村(社区)的 id")
]
AgentId = Annotated[
    int | None, QueryParameter(name="agentId", ge=1, le=MAX_ID, description="代办员的 id")
]
ActorId = Annotated[
    int | None, QueryParameter(name="actorId", ge=1, le=MAX_ID, description="操作人的 id")
]
RegionId = Annotated[
    int, QueryParameter(name="regionId", ge=1, le=MAX_ID, description="乡镇或村的 id")
]
Cursor = Annotated[
    int | None, QueryParameter(ge=1, le=MAX_ID, description="上一页最后一条的 id (nextCursor)")
]
Limit = Annotated[int, QueryParameter(ge=1, le=50, description="每页条数")]
ItemCode = Annotated[
    str | None, QueryParameter(name="itemCode", min_length=1, max_length=20, description="事项编码")
]
Start = Annotated[date, QueryParameter(name="from", description="起始日期 (含), 如 2026-11-01")]
End = Annotated[date, QueryParameter(name="to", description="截止日期 (含), 如 2026-11-30")]


class DateRange(NamedTuple):
    start: date
    end: date


def provide_period(start: Start, end: End) -> DateRange:
    """The `from` and `to` of figures and exports, checked once for every route that takes
    them (a dependency: its parameters are the route's)."""
    check_dates(start, end)
    return DateRange(start, end)


Period: TypeAlias = NamedDependency[DateRange]
# Required on submissions: the phone makes one per tap, so a retry on a weak signal is
# recognised. Visible ASCII only: it is stored with the order.
IdempotencyKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=8,
        max_length=80,
        pattern=r"^[!-~]+$",
        description="每次点击生成一个 (如 UUID); 弱网重试时原样再发",
    ),
]
