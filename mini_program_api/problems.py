"""RFC 9457 problem details for every error, with a stable `code` and a Chinese title."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from app import errors

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


def handle_validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    field_errors = _body_field_errors(request)
    if not field_errors:
        field_errors = [
            {
                "field": item.get("key") or item.get("source") or "body",
                "message": _chinese(str(item.get("message", ""))),
            }
            for item in (exc.extra if isinstance(exc.extra, list) else [])
        ]
    return problem(422, "invalid_input", "填写的内容有误", errors=field_errors)


def handle_http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    code, title = HTTP_CODES.get(exc.status_code, ("http_error", "请求失败"))
    return problem(exc.status_code, code, title)


def handle_internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error", extra={"path": request.url.path})
    code, title = HTTP_CODES[500]
    return problem(500, code, title)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    errors.DomainError: handle_domain_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_error,
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
    for name, field in known.items():
        if name not in raw:
            if field.required:
                found.append({"field": name, "message": "必填"})
            continue
        try:
            msgspec.convert(raw[name], types[name], strict=True)
        except msgspec.ValidationError as exc:
            found.append({"field": name, "message": _chinese(str(exc))})
    if not found:
        try:
            msgspec.convert(raw, struct, strict=True)
        except msgspec.ValidationError as exc:
            found.append({"field": "body", "message": _chinese(str(exc))})
    return found


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
