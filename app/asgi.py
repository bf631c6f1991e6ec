"""The ASGI application: create_app(settings) wires routers, handlers, docs and the scheduler."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.static_files import create_static_files_router

from app.context import Context
from app.logs import configure_logging
from app.security.tokens import AccessTokens
from app.settings import Settings, load_settings
from app.work_calendar import next_year_missing
from console.progress_page import STORE as PROGRESS_PAGE_STORE
from console.progress_page import progress_router
from console.router import console_router, template_config
from console.session import pages_on_the_console
from jobs.scheduler import start_in_process
from jobs.scheduler import stop as stop_scheduler
from mini_program_api.admin import admin_router
from mini_program_api.auth import AuthController
from mini_program_api.boundary import check_request
from mini_program_api.catalogue import CatalogueController
from mini_program_api.deps import provide_ctx, provide_principal
from mini_program_api.health import healthz, readyz
from mini_program_api.limits import STORE, build_store, rate_limit_middleware
from mini_program_api.me import MeController
from mini_program_api.metrics import metrics, prometheus_config
from mini_program_api.moves import ResidentMoves
from mini_program_api.observability import request_id_middleware, security_headers
from mini_program_api.openapi import (
    DOCS_ASSETS,
    docs_assets_dir,
    document_operations,
    openapi_config,
)
from mini_program_api.orders import ResidentOrderController
from mini_program_api.params import provide_period
from mini_program_api.problems import EXCEPTION_HANDLERS
from mini_program_api.public import PublicController
from mini_program_api.ratings import RESIDENT_ROUTES as RESIDENT_RATING_ROUTES
from mini_program_api.staff import agent_router, dispatch_router
from mini_program_api.uploads import UploadController, local_download, local_upload
from mini_program_api.wallet import WalletController

log = logging.getLogger("daiban")


def create_app(
    settings: Settings,
    *,
    ctx: Context | None = None,
    own_logging: bool = False,
    freeze_after_start: bool = False,
) -> Litestar:
    """Build the app. Tests pass their own settings (and may pass a prepared context).
    `freeze_after_start`: a worker process of its own (granian's), whose startup's objects
    live as long as it does (see the lifespan)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if own_logging:  # after the server has set up its own logging, so ours wins
            configure_logging(settings.core.log_level, settings.core.log_format)
        context = ctx or Context.build(settings)
        app.state.ctx = context
        if ctx is None:
            await context.store.ensure_ready()
        year = await context.db.run_read(lambda s: next_year_missing(s, context))
        if year is not None:
            log.warning(
                "the official working-day schedule of %s is not entered: due dates into %s"
                " are provisional until an admin enters it (PUT /mp/v1/admin/calendar/%s)",
                year,
                year,
                year,
            )
        scheduler = start_in_process(context) if settings.scheduler.mode == "in-process" else None
        if freeze_after_start:
            # What starting made (modules, routes, the context and its pools) lives as long
            # as the process: out of the cyclic collector's generations, so that collections
            # stop walking it again and again (a district's figures a quarter to a third
            # faster; docs/benchmarks.md).
            gc.freeze()
        try:
            yield
        finally:
            if scheduler is not None:
                await stop_scheduler(scheduler, context)
            if ctx is None:
                await context.aclose()

    api = Router(
        path="/mp/v1",
        route_handlers=[
            AuthController,
            PublicController,
            MeController,
            WalletController,
            agent_router,
            dispatch_router,
            admin_router,
            UploadController,
            CatalogueController,
            ResidentOrderController,
            ResidentMoves,
            *RESIDENT_RATING_ROUTES,
        ],
    )
    docs = settings.serves_api_docs
    limits_store = build_store(settings)
    measured = bool(settings.server.metrics_token)
    app = Litestar(
        route_handlers=[
            api,
            console_router(settings),
            progress_router(),
            healthz,
            readyz,
            local_upload,
            local_download,
            *([docs_assets()] if docs else []),
            *([metrics] if measured else []),
        ],
        lifespan=[lifespan],
        # A given context is there from the start, so an app served without lifespan works.
        state=State({"ctx": ctx} if ctx else {}),
        dependencies={
            "ctx": Provide(provide_ctx, sync_to_thread=False),
            "principal": Provide(provide_principal),
            "period": Provide(provide_period, sync_to_thread=False),
        },
        before_request=check_request,
        before_send=[security_headers(settings.storage.public_url)],
        exception_handlers=pages_on_the_console(EXCEPTION_HANDLERS),
        middleware=[
            *([prometheus_config().middleware] if measured else []),
            request_id_middleware,
            rate_limit_middleware(settings, AccessTokens(settings.security.secret_key, 1)),
        ],
        # The public progress page counts wrong digits per address in the limits' store.
        stores={STORE: limits_store, PROGRESS_PAGE_STORE: limits_store},
        request_max_body_size=settings.server.max_body_bytes,
        openapi_config=openapi_config(settings) if docs else None,
        template_config=template_config(settings),
        debug=False,
    )
    if docs:
        document_operations(app)
    return app


def docs_assets() -> Router:
    return create_static_files_router(
        path=DOCS_ASSETS, directories=[docs_assets_dir()], include_in_schema=False
    )


def app_from_env() -> Litestar:
    """Factory for granian workers: settings from the environment, read at start, not import."""
    return create_app(load_settings(), own_logging=True, freeze_after_start=True)
