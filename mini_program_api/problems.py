"""RFC 9457 problem details for every error, with a stable `code` and a Chinese title."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from app import errors
from app.sqlite_writer import WriterError
from mini_program_api.schemas import TEXT_PROBLEM, Input, field_text_problem, multiline_fields

log = logging.getLogger("daiban.http")

PROBLEM_JSON = "application/problem+json"

# Framework errors get the same stable codes and Chinese titles as domain errors.
HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求有误"),
    401: ("unauthenticated", "请先登录"),
    403: ("forbidden", "您没有权限进行此操作"),
    404: ("not_found", "没有找到"),
    405: ("method_not_allowed", "不支持该操作"),
    413: ("payload_too_large", "提交的内容太大"),
    415: ("unsupported_media_type", "不支持的内容格式"),
    429: ("too_many_requests", "操作太频繁,请稍后再试"),
    500: ("internal_error", "系统繁忙,请稍后再试"),
    503: ("service_unavailable", "服务暂不可用,请稍后再试"),
}


def problem(
    status: int, code: str, title: str, detail: str | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": f"https://daiban.invalid/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail and detail != title:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(body, status_code=status, media_type=PROBLEM_JSON)


def domain_error_response(exc: errors.DomainError) -> Response[dict[str, Any]]:
    return problem(exc.status, exc.code, exc.title, exc.detail, **exc.extra)


def handle_domain_error(_: Request[Any, Any, Any], exc: errors.DomainError) -> Response[Any]:
    return domain_error_response(exc)


def handle_file_problems(_: Request[Any, Any, Any], exc: errors.FileProblems[Any]) -> Response[Any]:
    """An uploaded file (a catalogue, a staff sheet) with problems: 422 listing each."""
    return domain_error_response(exc.as_invalid_input())


def handle_validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    field_errors = _body_field_errors(request)
    if not field_errors:
        field_errors = [
            {
                "field": _public_name(request, item.get("key")) or item.get("source") or "body",
                "message": _chinese(str(item.get("message", ""))),
            }
            for item in (exc.extra if isinstance(exc.extra, list) else [])
        ]
    if not field_errors and (missing := _MISSING.search(str(exc.detail))):
        # A required header or query parameter that was not sent at all.
        field_errors = [{"field": missing["name"], "message": "必填"}]
    if not field_errors:
        field_errors = [{"field": "body", "message": "请求内容不是有效的JSON"}]
    return problem(422, "invalid_input", "填写的内容有误", errors=field_errors)


_MISSING = re.compile(r"Missing required \w+ parameter '(?P<name>[^']+)'")


def _public_name(request: Request[Any, Any, Any], key: str | None) -> str | None:
    """A parameter's name on the wire (`villageId`, `Idempotency-Key`), not in the code."""
    if not key:
        return None
    field = request.route_handler.parsed_fn_signature.parameters.get(key)
    kwarg = getattr(field, "kwarg_definition", None)
    for attribute in ("name", "header", "query", "cookie"):
        alias = getattr(kwarg, attribute, None)
        if alias:
            return str(alias)
    return key


def handle_http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    code, title = HTTP_CODES.get(exc.status_code, ("http_error", "请求失败"))
    response = problem(exc.status_code, code, title)
    headers = dict(exc.headers or {})
    if exc.status_code == 429:
        # Litestar's rate limiter says when the window resets; phones read Retry-After.
        headers["Retry-After"] = str(max(1, int(headers.get("RateLimit-Reset", "60") or 60)))
    response.headers.update(headers)
    return response


def handle_too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """A body nested past what the decoder's recursion takes (a thousand arrays in 2 kB):
    refused as the client's error, and logged in case it was not a body after all."""
    log.warning("recursion too deep", extra={"path": request.url.path})
    return domain_error_response(errors.BodyTooDeep())


def handle_writer_error(request: Request[Any, Any, Any], exc: WriterError) -> Response[Any]:
    """SQLite's writer thread closed or died under this write (logged where it happened):
    503, and the client retries (an order's idempotency key makes that safe)."""
    log.error("database writer failed", extra={"path": request.url.path}, exc_info=exc)
    return domain_error_response(errors.DatabaseUnreachable())


def handle_internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error", extra={"path": request.url.path})
    code, title = HTTP_CODES[500]
    return problem(500, code, title)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    errors.DomainError: handle_domain_error,
    errors.FileProblems: handle_file_problems,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_error,
    RecursionError: handle_too_deep,
    WriterError: handle_writer_error,
    Exception: handle_internal_error,
}


def _body_field_errors(request: Request[Any, Any, Any]) -> list[dict[str, str]]:
    """msgspec stops at the first bad field; check each field on its own to list them all."""
    data_field = getattr(request.route_handler, "parsed_data_field", None)
    struct = getattr(data_field, "annotation", None)
    if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
        return []
    # Handlers are synchronous, so read the body Litestar already received (if it did).
    body = request._connection_state.body
    if not isinstance(body, bytes):
        return []
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return [{"field": "body", "message": "请求内容不是有效的JSON"}]
    if not isinstance(raw, dict):
        return [{"field": "body", "message": "请求内容应为JSON对象"}]
    return struct_field_errors(struct, raw)


def struct_field_errors(struct: type[msgspec.Struct], raw: dict[str, Any]) -> list[dict[str, str]]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    known = {f.encode_name: f for f in info.fields}
    found: list[dict[str, str]] = [
        {"field": key, "message": "不认识的字段"} for key in raw if key not in known
    ]
    hints = msgspec.structs.fields(struct)
    types = {f.encode_name: f.type for f in hints}
    lines = multiline_fields(struct) if issubclass(struct, Input) else {}
    for name, field in known.items():
        if name not in raw:
            if field.required:
                found.append({"field": name, "message": "必填"})
            continue
        try:
            value = msgspec.convert(raw[name], types[name], strict=True)
        except msgspec.ValidationError as exc:
            found.append(_located(name, str(exc)))
            continue
        # Nested bodies were checked by their own conversion just now; this walks the rest.
        problem = field_text_problem(value, multiline=lines.get(name, False))
        if problem:
            found.append({"field": name, "message": problem})
    if not found:
        try:
            msgspec.convert(raw, struct, strict=True)
        except msgspec.ValidationError as exc:
            found.append(_located("", str(exc)))
    return found


def _located(name: str, message: str) -> dict[str, str]:
    """A field's problem, named by its path in the body (`missing[0].reason`)."""
    text, _, at = message.partition(" - at `$")
    path = name + at.rstrip("`")
    if text.startswith(TEXT_PROBLEM):
        # Raised by a body's own check (schemas.Input), which names the field inside it.
        field, _, problem = text.removeprefix(TEXT_PROBLEM).partition(":")
        path = f"{path}.{field}" if path else field
        return {"field": path.lstrip("."), "message": problem}
    return {"field": path.lstrip(".") or name or "body", "message": _chinese(text)}


def _chinese(message: str) -> str:
    """msgspec's English reasons, said in Chinese for the phone."""
    text = message.split(" - at ")[0]
    rules = [
        ("Expected `int", "应为整数"),
        ("Expected `str", "应为文字"),
        ("Expected `bool", "应为是或否"),
        ("Expected `float", "应为数字"),
        ("Expected `object", "应为对象"),
        ("Expected `array", "应为列表"),
        ("Expected `null", "应为空"),
        ("Expected `str` of length <=", "文字太长"),
        ("Expected `str` of length >=", "文字太短"),
        ("Expected `int` >=", "数值太小"),
        ("Expected `int` <=", "数值太大"),
        ("Expected `array` of length", "列表长度不符合要求"),
        ("Invalid enum value", "取值不在允许范围内"),
        ("Object contains unknown field", "不认识的字段"),
        ("Object missing required field", "缺少必填字段"),
        ("Expected `str` matching regex", "格式不正确"),
        ("Invalid RFC3339", "日期时间格式不正确"),
        ("Invalid ISO 8601", "日期格式不正确"),
        ("JSON is malformed", "请求内容不是有效的JSON"),
    ]
    matches = [(len(english), chinese) for english, chinese in rules if text.startswith(english)]
    return max(matches)[1] if matches else "格式不正确"
