"""The console's router, its templates and its static files, for app/asgi.py to mount."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.config.csrf import CSRFConfig
from litestar.di import NamedDependency, Provide
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.accounts.console import ConsoleUser
from app.orders.states import STATUS_NAMES
from app.settings import Settings
from console import admin, agents, cases, catalogue, dispatch, figures, staff
from console.session import (
    PATH,
    page_headers,
    provide_admin,
    provide_dispatcher,
    provide_user,
    secure_cookies,
)
from console.sign_in import SignInController, scanned_by_camera, sign_out

HERE = Path(__file__).parent
STATIC = f"{PATH}/static"
CSRF_COOKIE = "daiban_csrf"


@get("/", name="console_home")
async def home(request: Request[Any, Any, Any], user: NamedDependency[ConsoleUser]) -> Template:
    """A dispatcher's home is the board; an admin's the district's pages."""
    if user.principal.role == "dispatcher":
        return await dispatch.board_page(request, user)
    return await admin.home_page(request, user)


async def static_headers(response: Response[Any]) -> Response[Any]:
    # The pages ask for them with their contents' digest in the address (?v=): an upgrade
    # changes the address, so a browser may keep them as long as it likes.
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


def asset_version() -> str:
    """A digest of the static files' contents, for their addresses."""
    digest = hashlib.sha256()
    for path in sorted((HERE / "static").iterdir()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def console_router(settings: Settings) -> Router:
    csrf = CSRFConfig(
        secret=hashlib.sha256(b"console-csrf:" + settings.security.secret_key.encode()).hexdigest(),
        cookie_name=CSRF_COOKIE,
        cookie_path=PATH,
        cookie_secure=secure_cookies(settings),
        cookie_samesite="strict",
        header_name="x-csrftoken",
    )
    return Router(
        path=PATH,
        route_handlers=[
            home,
            SignInController,
            scanned_by_camera,
            sign_out,
            dispatch.board_parts,
            dispatch.OrderPages,
            cases.CasePages,
            cases.RatingPages,
            agents.AgentPages,
            admin.AdminPages,
            staff.StaffPages,
            catalogue.CataloguePages,
            catalogue.OfferPages,
            figures.figures_page,
            figures.export,
            create_static_files_router(
                path="/static",
                directories=[HERE / "static"],
                include_in_schema=False,
                after_request=static_headers,
            ),
        ],
        dependencies={
            "user": Provide(provide_user),
            "dispatcher": Provide(provide_dispatcher),
            "admin": Provide(provide_admin),
        },
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf)],
        after_request=page_headers(settings),
        include_in_schema=False,
    )


_CJK = r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"
# One space at most on either side: each position is tried a bounded number of ways, so
# the cost is linear in the text however it is spaced.
_HALF = re.compile(rf"(?<={_CJK}) ?([,;:!?)]) ?| ?([,;:!?(]) ?(?={_CJK})")
_FULL = str.maketrans(",;:!?()", "，；：！？（）")


def full_width(text: str | None) -> str:
    """The service's messages in a person's Chinese: punctuation beside Chinese characters
    full-width (the API's messages keep the ASCII punctuation phones have always shown)."""
    if not text:
        return ""
    return _HALF.sub(lambda m: (m.group(1) or m.group(2)).translate(_FULL), text)


def template_config(settings: Settings) -> TemplateConfig[JinjaTemplateEngine]:
    zone = settings.zone
    version = asset_version()

    def when(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else "—"

    def deadline(value: datetime | None) -> str:
        """A deadline at midnight is the end of the day before (24:00), as people say it."""
        if value is None:
            return "—"
        local = value.astimezone(zone)
        if (local.hour, local.minute, local.second) == (0, 0, 0):
            return f"{(local - timedelta(days=1)).strftime('%Y-%m-%d')} 24:00"
        return local.strftime("%Y-%m-%d %H:%M")

    def day(value: date | datetime | None) -> str:
        if value is None:
            return "—"
        if isinstance(value, datetime):
            value = value.astimezone(zone).date()
        return f"{value.year}年{value.month}月{value.day}日"

    def prepare(engine: JinjaTemplateEngine) -> None:
        engine.engine.filters.update(when=when, day=day, deadline=deadline, zh=full_width)
        engine.engine.globals.update(static=STATIC, statuses=STATUS_NAMES, version=version)

    return TemplateConfig(
        directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=prepare
    )
