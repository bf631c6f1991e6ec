"""The OpenAPI description a client generator can trust: every operation lists the errors it
can answer with one shared problem-details schema (and the stable `code` values of each
status), public routes carry no security requirement, and the docs page works offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIMediaType,
    Operation,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from app import errors
from app.settings import Settings
from mini_program_api.examples import REQUEST_EXAMPLES
from mini_program_api.problems import HTTP_CODES, PROBLEM_JSON
from storage.verify import VERIFICATION_CODES

# The security requirement of every operation whose guards require a login.
BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]
DOCS_ASSETS = "/schema/assets"

# Codes some answers carry beyond the domain errors' own: the framework's, a file's checks.
_MORE_CODES: dict[int, set[str]] = {
    status: {code} for status, (code, _) in HTTP_CODES.items() if status != 500
}
_MORE_CODES.setdefault(422, set()).update(VERIFICATION_CODES)
_MORE_CODES.setdefault(409, set()).add("upload_settled")
TITLES = {
    400: "请求内容有误",
    401: "未登录或登录已失效",
    403: "没有权限",
    404: "没有找到 (或不在您的范围内)",
    409: "与当前状态冲突",
    410: "已过期",
    413: "提交的内容太大",
    422: "填写的内容有误 (errors 列出每个字段)",
    429: "操作太频繁 (见 Retry-After)",
    502: "微信服务返回错误",
    503: "服务暂不可用",
}


def codes_by_status() -> dict[int, list[str]]:
    """Every stable code the API can answer with, by HTTP status: the domain errors (found
    by walking DomainError's subclasses, wherever they are declared) and the rest."""
    found: dict[int, set[str]] = {s: set(c) for s, c in _MORE_CODES.items()}
    pending = list(errors.DomainError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not errors.FileRejected:
            found.setdefault(cls.status, set()).add(cls.code)
    return {status: sorted(codes) for status, codes in sorted(found.items())}


class FieldProblem(msgspec.Struct, kw_only=True):
    field: str  # the field's public name, with its path in the body: missing[0].reason
    message: str  # in Chinese, for the phone


def problem_struct(codes: dict[int, list[str]]) -> type[msgspec.Struct]:
    all_codes = tuple(sorted({c for found in codes.values() for c in found}))
    return msgspec.defstruct(
        "Problem",
        [
            ("type", str),
            ("title", str),  # Chinese, fit for a phone as it is
            ("status", int),
            ("code", Literal[all_codes]),
            ("detail", str | None, None),
            ("errors", list[FieldProblem] | None, None),
        ],
        kw_only=True,
    )


@dataclass
class _Needs:
    authenticated: bool
    path_params: bool
    body: bool
    parameters: bool
    writes: bool
    limited: bool
    extra: tuple[int, ...]


def _statuses(needs: _Needs) -> set[int]:
    statuses = {503}
    if needs.authenticated:
        statuses |= {401, 403, 404}
    if needs.path_params or needs.writes or needs.parameters:
        statuses.add(404)  # the object named, or one a parameter refers to (villageId)
    if needs.path_params:
        statuses.add(400)  # (in place of Litestar's own 400 shape, which is never sent)
    if needs.body:
        statuses.add(413)
    if needs.parameters or needs.body or needs.writes:
        # 400 for a body that is not JSON or nests too deep (Litestar would otherwise list
        # its own 400 shape here, which this service never sends).
        statuses |= {400, 422}
    if needs.writes:
        statuses.add(409)
    if needs.limited:
        statuses.add(429)
    return statuses | set(needs.extra)


def document_operations(app: Litestar) -> None:
    """Give every operation of `app` its error answers, and a security requirement when its
    guards require a login (public ones have none). Only the app's own copies of the route
    handlers change, nothing shared; both are read when the schema is first built."""
    codes = codes_by_status()
    problem = problem_struct(codes)
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            parameters = handler.parsed_fn_signature.parameters
            injected = set(handler.resolve_dependencies()) | _NOT_PARAMETERS
            given = set(parameters) - injected - set(route.path_parameters)
            needs = _Needs(
                authenticated=any(
                    getattr(g, "__name__", "").startswith("require_")
                    for g in handler.resolve_guards()
                ),
                path_params=bool(route.path_parameters),
                body="data" in parameters,
                # Its own query and header parameters, or a dependency's (period: from, to).
                parameters=bool(given - {"data"}) or "period" in parameters,
                writes=not ({"GET", "HEAD"} & set(handler.http_methods)),
                limited=bool(handler.opt.get("limits")),
                extra=tuple(handler.opt.get("errors", ())),
            )
            handler.operation_class = _operation_class(handler.opt.get("media_types", ()))
            if needs.authenticated:
                handler.security = BEARER
            handler.responses = {
                **(handler.responses or {}),
                **{
                    status: ResponseSpec(
                        data_container=problem,
                        media_type=PROBLEM_JSON,
                        generate_examples=False,
                        description=_description(status, codes),
                    )
                    for status in sorted(_statuses(needs))
                },
            }


_NOT_PARAMETERS = frozenset({"self", "request", "state", "scope", "headers", "data"})


def _operation_class(media_types: tuple[str, ...]) -> type[Operation]:
    if not media_types:
        return DocumentedOperation
    return type("FileOperation", (DocumentedOperation,), {"success_media_types": media_types})


def _description(status: int, codes: dict[int, list[str]]) -> str:
    return f"{TITLES.get(status, '')}; code: {', '.join(codes.get(status, []))}"


class DocumentedOperation(Operation):
    """An operation whose optional request body (a move that needs none) says so, and whose
    success answer lists every media type it comes in (`success_media_types`)."""

    success_media_types: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Operation is a dataclass made without __post_init__, so its __init__ calls none.
        super().__init__(*args, **kwargs)
        success: Any = next(
            (r for s, r in (self.responses or {}).items() if s.startswith("2")), None
        )
        if self.success_media_types and success is not None and success.content:
            success.content = {
                t: OpenAPIMediaType(schema=_file_schema(t)) for t in self.success_media_types
            }
        body: Any = self.request_body
        if body is None or not body.content:
            return
        media = next(iter(body.content.values()))
        variants = [media.schema, *(getattr(media.schema, "one_of", None) or [])]
        if any(getattr(v, "type", None) == OpenAPIType.NULL for v in variants):
            body.required = False
        for variant in variants:
            # Components are keyed by module and class here (shortened later): the class.
            name = getattr(variant, "ref", "").rsplit("/", 1)[-1].rsplit("_", 1)[-1]
            if name in REQUEST_EXAMPLES:
                media.examples = {"example": Example(value=REQUEST_EXAMPLES[name])}


def _file_schema(media_type: str) -> Schema:
    if "yaml" in media_type:  # a document a reader parses, not opaque bytes
        return Schema(type=OpenAPIType.OBJECT, description="与导入文件相同的 YAML 文档")
    return Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)


def openapi_config(settings: Settings) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="daiban 帮办代办 API",
        version="1",
        description=(
            "村级帮办代办微信小程序后端。错误均为 RFC 9457 problem details "
            "(application/problem+json), 带稳定的 code 和可直接显示的中文 title; "
            "errors 列出每个有误的字段。"
        ),
        path="/schema",
        render_plugins=[
            SwaggerRenderPlugin(
                js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' href='{DOCS_ASSETS}/favicon-32x32.png'>",
                path="/",
            )
        ],
        components=Components(
            security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}
        ),
    )


def docs_assets_dir() -> Path:
    """Swagger UI's files as the swagger-ui-py package ships them: the page needs nothing from
    the internet (county intranets often have no way out)."""
    import swagger_ui

    return Path(swagger_ui.__file__).parent / "static"
