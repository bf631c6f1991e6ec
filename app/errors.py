"""Domain errors: a stable machine code, an HTTP status and a Chinese title a phone can show."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec


class DomainError(Exception):
    status = 400
    code = "bad_request"
    title = "请求有误"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


def error(code: str, status: int, title: str) -> type[DomainError]:
    """Declare an error class in one line, so the catalogue of codes reads as a table."""
    return type(code, (DomainError,), {"code": code, "status": status, "title": title})


InvalidInput = error("invalid_input", 422, "填写的内容有误")
BodyTooDeep = error("body_too_deep", 400, "提交的内容层次太深")
NotFound = error("not_found", 404, "没有找到")
Unauthenticated = error("unauthenticated", 401, "请先登录")
TokenExpired = error("token_expired", 401, "登录已过期,请重新登录")
TokenInvalid = error("token_invalid", 401, "登录凭证无效,请重新登录")
RefreshReused = error("refresh_token_reused", 401, "登录状态异常,已退出所有设备,请重新登录")
# Why a login ended, told to the phone that still holds it (app/models/accounts.py).
SessionEnded = error("session_ended", 401, "已退出登录,请重新登录")
TokenRevoked = error("token_revoked", 401, "登录已失效,请重新登录")
AccountDisabled = error("account_disabled", 401, "账号已停用,请联系便民服务中心")
SessionRebound = error("session_rebound", 401, "该账号已绑定到另一部手机,本机已退出")
SessionLimit = error("session_limit", 401, "登录的设备太多,本机已退出,请重新登录")
AccountClosed = error("account_closed", 401, "账号已注销")
ENDED_LOGIN: dict[str, type[DomainError]] = {
    "logout": SessionEnded,
    "replaced": SessionEnded,
    "reused": RefreshReused,
    "disabled": AccountDisabled,
    "rebound": SessionRebound,
    "capped": SessionLimit,
    "closed": AccountClosed,
}
# The console (app/accounts/console.py): its sign-in by QR code and its browser sessions.
ConsoleStaffOnly = error("console_staff_only", 403, "只有调度员和管理员可以登录工作台")
SignInInvalid = error("sign_in_invalid", 404, "二维码无效或已过期，请刷新电脑上的二维码")
ConsoleSignedOut = error("console_signed_out", 401, "请先登录工作台")
ConsoleSessionExpired = error(
    "console_session_expired", 401, "长时间未操作，已退出工作台，请重新登录"
)
Forbidden = error("forbidden", 403, "您没有权限进行此操作")
Conflict = error("conflict", 409, "操作冲突,请刷新后重试")
BindingCodeInvalid = error("binding_code_invalid", 400, "绑定码无效或已过期")
AlreadyStaff = error("already_staff", 409, "该微信已绑定工作人员账号")
WeChatCodeInvalid = error("wechat_code_invalid", 400, "微信登录凭证无效或已过期,请重新进入小程序")
WeChatRateLimited = error("wechat_rate_limited", 429, "操作太频繁,请稍后再试")
WeChatUserRisky = error("wechat_user_risky", 403, "微信账号存在风险,暂时无法登录")
WeChatBusy = error("wechat_busy", 503, "微信服务繁忙,请稍后再试")
WeChatUnavailable = error("wechat_unavailable", 503, "暂时连不上微信服务,请稍后再试")
WeChatFailed = error("wechat_error", 502, "微信服务返回错误,请稍后再试")
UploadLimitReached = error("upload_limit_reached", 429, "上传的文件太多,请稍后再试")
UploadNotReceived = error("upload_not_received", 409, "还没有收到文件,请重新上传")
UploadExpired = error("upload_expired", 410, "上传已过期,请重新上传")
FileRemoved = error("file_removed", 410, "文件已过保存期限,已按规定删除")
OrdersStillOpen = error("orders_still_open", 409, "还有未办结的办件,办结或撤回后才能注销")
StorageUnavailable = error("storage_unavailable", 503, "文件服务暂不可用,请稍后再试")
ServiceUnavailable = error("service_unavailable", 503, "服务暂不可用,请稍后再试")
# Every connection of the pool stayed taken for DAIBAN_DATABASE_WAIT_SECONDS.
DatabaseBusy = error("database_busy", 503, "系统繁忙,请稍后再试")
DatabaseUnreachable = error("database_unreachable", 503, "数据库不可用")
MigrationsPending = error("migrations_pending", 503, "数据库结构不是最新")


class FileRejected(DomainError):
    """A received file failed verification; `code` is the verifier's stable reason."""

    status = 422
    title = "文件未通过检查"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


P = TypeVar("P")


class FileProblems(Exception, Generic[P]):
    """A file that cannot be taken as it is (a catalogue, a region list, a staff sheet):
    every problem found in it, each naming its row, so that one round fixes them all."""

    def __init__(self, problems: list[P]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems

    def as_invalid_input(self) -> DomainError:
        """What a caller of the API is told: 422, nothing taken, every problem listed."""
        return InvalidInput(
            f"文件有 {len(self.problems)} 处问题,未导入任何内容",
            errors=[msgspec.to_builtins(p) for p in self.problems],
        )
