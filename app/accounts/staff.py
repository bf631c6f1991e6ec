"""Staff administration: an admin creates, edits and disables staff of their district and
issues binding codes; the agents of a village or a town as others see them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from msgspec import UNSET, UnsetType
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app import audit, errors
from app.accounts import outputs
from app.accounts.service import revoke_all
from app.context import Context
from app.kinds import Post
from app.models import Account, Order, Region, Upload
from app.notifications.outbox import Message, notify, town_dispatchers
from app.orders.handover import hand_over, station_partner
from app.orders.moves import town_agent
from app.orders.states import OPEN
from app.regions.service import LEVEL_NAMES, contains, get_region, within
from app.security import identity
from app.security.tokens import Principal, new_binding_code, secret_hash
from app.uploads.service import STAFF_PHOTO
from storage.base import StorageError

T = TypeVar("T")
log = logging.getLogger("daiban.accounts")

# Where each role is posted: an agent at a village station (便民服务站) or at the town's
# centre (便民服务中心, at least two there), a dispatcher at the town's centre.
STAFF_LEVELS = {"agent": ("village", "town"), "dispatcher": ("town",), "admin": ("district",)}
POSTED_AT = {"agent": "村(社区)便民服务站或乡镇(街道)便民服务中心"} | {
    role: LEVEL_NAMES[levels[0]] for role, levels in STAFF_LEVELS.items() if role != "agent"
}


def _region(session: Session, region_id: int | None) -> Region | None:
    return session.get(Region, region_id) if region_id else None


@dataclass
class StaffInput:
    role: str
    name: str
    region_id: int
    work_phone: str | None = None
    service_hours: str | None = None
    post: Post | None = None


def _field_problems(
    role: str, *, name: str | None, work_phone: str | None, post: str | None
) -> list[dict[str, str]]:
    """The rules creating and editing share; a None field is absent or cleared, both fine."""
    problems = []
    if name is not None and not 2 <= len(name.strip()) <= 20:
        problems.append({"field": "name", "message": "姓名应为2到20个字"})
    if work_phone is not None and not identity.is_phone(work_phone):
        problems.append({"field": "workPhone", "message": "请填写手机号码或带区号的座机号码"})
    if post is not None and (role != "agent" or post not in ("A", "B")):
        problems.append({"field": "post", "message": "只有代办员可设A岗或B岗"})
    return problems


def _check_staff_input(session: Session, admin_region: Region, data: StaffInput) -> Region:
    problems = []
    if data.role not in STAFF_LEVELS:
        problems.append({"field": "role", "message": "角色只能是 agent、dispatcher 或 admin"})
    problems += _field_problems(
        data.role, name=data.name, work_phone=data.work_phone, post=data.post
    )
    if problems:
        raise errors.InvalidInput("填写的内容有误", errors=problems)
    region = session.get(Region, data.region_id)
    if region is None or not contains(admin_region, region):
        raise errors.NotFound("没有找到该地区")
    get_region(session, region.id, in_service=True)
    if region.level not in STAFF_LEVELS[data.role]:
        wanted = POSTED_AT[data.role]
        raise errors.InvalidInput(
            f"{outputs.ROLE_NAMES[data.role]}应归属于{wanted}",
            errors=[{"field": "regionId", "message": f"应选择{wanted}"}],
        )
    return region


def create_staff(
    session: Session, ctx: Context, admin: Principal, data: StaffInput
) -> outputs.StaffCreated:
    admin_region = get_region(session, admin.region_id or 0)
    region = _check_staff_input(session, admin_region, data)
    account = Account(
        role=data.role,
        name=data.name.strip(),
        region_id=region.id,
        work_phone=data.work_phone,
        service_hours=data.service_hours,
        post=data.post,
        on_duty=data.role == "agent",
    )
    code = new_binding(account, ctx)
    session.add(account)
    session.flush()
    detail = {"role": data.role, "regionId": region.id, "post": data.post}
    audit.record(session, admin, "staff.create", f"account:{account.id}", ctx.now(), detail)
    return outputs.StaffCreated(
        staff=outputs.staff_view(account, region, ctx.today()), binding_code=code
    )


FirstAdminRefused = errors.error("first_admin_bound", 409, "本区已有绑定的管理员")


def first_admin(
    session: Session, ctx: Context, district_code: str, name: str
) -> outputs.StaffCreated:
    """The district's first admin, created from the command line (`daiban setup`), with a
    one-time binding code to enter in the mini-program. Run again before anyone has bound,
    it gives the same account a new code (and the name given); once an admin of the
    district is bound, it refuses: admins then create admins in the mini-program."""
    district = session.scalar(
        select(Region).where(Region.code == district_code, Region.level == "district")
    )
    if district is None:
        raise errors.NotFound(f"没有找到区县 {district_code}, 请先导入区划")
    problems = _field_problems("admin", name=name, work_phone=None, post=None)
    if problems:
        raise errors.InvalidInput("填写的内容有误", errors=problems)
    admins = session.scalars(
        select(Account)
        .where(Account.role == "admin", Account.region_id == district.id)
        .order_by(Account.id)
    ).all()
    if any(a.openid is not None and a.disabled_at is None for a in admins):
        raise FirstAdminRefused("本区已有绑定的管理员, 请由其在小程序中新建管理员")
    account = admins[0] if admins else Account(role="admin", region_id=district.id, on_duty=False)
    account.name, account.disabled_at = name.strip(), None
    code = new_binding(account, ctx)
    session.add(account)
    session.flush()
    audit.record(session, None, "staff.first_admin", f"account:{account.id}", ctx.now())
    return outputs.StaffCreated(
        staff=outputs.staff_view(account, district, ctx.today()), binding_code=code
    )


def new_binding(account: Account, ctx: Context) -> str:
    code = new_binding_code()
    account.binding_code_hash = secret_hash(code)
    account.binding_expires_at = ctx.now() + timedelta(
        hours=ctx.settings.security.binding_code_ttl_hours
    )
    return code


def staff_in_scope(session: Session, admin: Principal, staff_id: int) -> Account:
    account = session.get(Account, staff_id)
    if account is None or account.role == "resident":
        raise errors.NotFound("没有找到该工作人员")
    admin_region = get_region(session, admin.region_id or 0)
    region = _region(session, account.region_id)
    if region is None or not contains(admin_region, region):
        raise errors.NotFound("没有找到该工作人员")
    return account


def list_staff(
    session: Session, ctx: Context, admin: Principal, role: str | None
) -> list[outputs.StaffView]:
    query = (
        select(Account, Region)
        .join(Region, Region.id == Account.region_id)
        .where(Account.role != "resident")
        .where(within(admin.region_id))
        .order_by(Region.code, Account.role, Account.id)
    )
    if role:
        query = query.where(Account.role == role)
    rows = session.execute(query).all()
    return [outputs.staff_view(account, region, ctx.today()) for account, region in rows]


def reissue_binding_code(
    session: Session, ctx: Context, admin: Principal, staff_id: int
) -> outputs.StaffCreated:
    """A new code for an unbound staff account, or to move a staff account to a new phone."""
    account = staff_in_scope(session, admin, staff_id)
    if account.id == admin.account_id:
        # It would unbind the admin's own phone: another admin must do it.
        raise errors.Conflict("不能为自己重新生成绑定码 (会解除本机绑定), 请由另一位管理员操作")
    if account.openid is not None:
        revoke_all(session, account.id, ctx, "rebound")
        account.openid = None
    code = new_binding(account, ctx)
    session.flush()
    audit.record(session, admin, "staff.binding_code", f"account:{account.id}", ctx.now())
    return outputs.StaffCreated(
        staff=outputs.staff_view(account, _region(session, account.region_id), ctx.today()),
        binding_code=code,
    )


@dataclass
class StaffChange:
    """What an admin edits; UNSET leaves a field as it is, None clears it."""

    name: str | UnsetType = UNSET
    work_phone: str | UnsetType | None = UNSET
    service_hours: str | UnsetType | None = UNSET
    post: Post | UnsetType | None = UNSET
    disabled: bool | UnsetType = UNSET
    # Disabling an agent: who takes over their open orders (else their partner on duty),
    # and, for the last agent on duty where they are posted, that the station is closing.
    hand_over_to: int | None = None
    station_closing: bool = False


def _given(value: T | UnsetType | None) -> T | None:
    return None if isinstance(value, UnsetType) else value


def update_staff(
    session: Session, ctx: Context, admin: Principal, staff_id: int, change: StaffChange
) -> outputs.StaffView:
    account = staff_in_scope(session, admin, staff_id)
    problems = _field_problems(
        account.role,
        name=_given(change.name),
        work_phone=_given(change.work_phone),
        post=_given(change.post),
    )
    if problems:
        raise errors.InvalidInput("填写的内容有误", errors=problems)
    if change.disabled is True and account.id == admin.account_id:
        raise errors.Conflict("不能停用自己的账号")
    handed = 0
    if change.disabled is True and account.role == "agent" and account.disabled_at is None:
        handed = _agent_leaving(session, ctx, admin, account, change)
    if not isinstance(change.name, UnsetType):
        account.name = change.name.strip()
    if not isinstance(change.work_phone, UnsetType):
        account.work_phone = change.work_phone
    if not isinstance(change.service_hours, UnsetType):
        account.service_hours = change.service_hours
    if not isinstance(change.post, UnsetType):
        account.post = change.post
    if not isinstance(change.disabled, UnsetType):
        account.disabled_at = ctx.now() if change.disabled else None
        if change.disabled:
            revoke_all(session, account.id, ctx, "disabled")
    session.flush()
    changed: dict[str, object] = {
        name: value
        for name, value in (
            ("name", change.name),
            ("workPhone", change.work_phone),
            ("serviceHours", change.service_hours),
            ("post", change.post),
            ("disabled", change.disabled),
        )
        if not isinstance(value, UnsetType)
    }
    if handed:
        changed["handedOver"] = handed
    audit.record(session, admin, "staff.edit", f"account:{account.id}", ctx.now(), changed)
    return outputs.staff_view(account, _region(session, account.region_id), ctx.today())


LastAgent = errors.error("last_agent", 409, "该站将没有在岗的代办员")


def _agent_leaving(
    session: Session, ctx: Context, admin: Principal, agent: Account, change: StaffChange
) -> int:
    """Before an agent is disabled: their open orders go to `hand_over_to`, else to their
    partner on duty where they are posted (AB岗). The last agent on duty of a station or a
    centre goes only when the admin names who takes over or confirms the station is
    closing; the town's dispatchers are then told. Returns how many orders were handed."""
    post = get_region(session, agent.region_id or 0)
    town_id = post.id if post.level == "town" else post.town_id or 0
    try:
        partner: Account | None = station_partner(session, agent, ctx.today())
    except errors.Conflict:
        partner = None
    target = partner
    if change.hand_over_to is not None:
        target = town_agent(session, town_id, change.hand_over_to)
        if target is None or target.id == agent.id:
            raise errors.InvalidInput(
                errors=[{"field": "handOverTo", "message": "请选择本镇另一位在用的代办员"}]
            )
    if partner is None and change.hand_over_to is None and not change.station_closing:
        raise LastAgent(
            f"{agent.name}是{post.name}唯一在岗的代办员: 请指定接手办件的代办员"
            " (handOverTo), 或确认该站撤站 (stationClosing)"
        )
    open_orders = session.scalar(
        select(func.count())
        .select_from(Order)
        .where(Order.agent_id == agent.id, Order.status.in_(OPEN))
    )
    handed = 0
    if open_orders:
        if target is None:
            raise LastAgent(
                f"{agent.name}还有 {open_orders} 件在办, 请指定接手的代办员 (handOverTo)"
            )
        handed = hand_over(session, ctx, admin, agent, target, "停用")
    if partner is None:
        taken = f", 在办的 {handed} 件已交{target.name}" if handed and target else ""
        body = f"{post.name}的代办员{agent.name}已停用{taken}, 该站暂无在岗代办员, 请安排人员。"
        message = Message(
            "station_unstaffed",
            "便民服务站无在岗代办员",
            body,
            {"title": "便民服务站无在岗代办员", "note": body},
        )
        key = f"unstaffed:{agent.id}:{ctx.now().isoformat()}"
        notify(session, ctx, town_dispatchers(session, ctx, town_id), message, key, ctx.now())
    return handed


# --- the photo on the public card (挂牌上岗) -------------------------------------------


async def set_staff_photo(
    ctx: Context, admin: Principal, staff_id: int, upload_id: int
) -> outputs.StaffView:
    """The admin's own finished photo upload (purpose staff_photo) becomes the card photo.

    The upload row is taken over, not copied: deleting it in the same transaction that sets
    photo_key keeps the clean-up of unattached uploads away from the file, and its guard
    makes an order or a concurrent request that took the upload first win. The replaced
    photo and the unused thumbnail are removed from storage after the commit."""

    def take(session: Session) -> tuple[outputs.StaffView, list[str | None]]:
        account = staff_in_scope(session, admin, staff_id)
        taken = session.execute(
            delete(Upload)
            .where(
                Upload.id == upload_id,
                Upload.owner_id == admin.account_id,
                Upload.purpose == STAFF_PHOTO,
                Upload.status == "ready",
                Upload.order_id.is_(None),
                Upload.content_type.startswith("image/"),
            )
            .returning(Upload.key, Upload.thumbnail_key)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if taken is None or taken.key is None:
            raise errors.NotFound("没有找到这张照片,请先上传并完成检查")
        replaced = account.photo_key
        account.photo_key = taken.key
        session.flush()
        audit.record(session, admin, "staff.photo", f"account:{account.id}", ctx.now())
        view = outputs.staff_view(account, _region(session, account.region_id), ctx.today())
        return view, [replaced, taken.thumbnail_key]

    view, unused = await ctx.db.run_write(take)
    await _remove_files(ctx, *unused)
    return view


async def remove_staff_photo(ctx: Context, admin: Principal, staff_id: int) -> outputs.StaffView:
    def remove(session: Session) -> tuple[outputs.StaffView, str | None]:
        account = staff_in_scope(session, admin, staff_id)
        replaced, account.photo_key = account.photo_key, None
        session.flush()
        audit.record(session, admin, "staff.photo_removed", f"account:{account.id}", ctx.now())
        return outputs.staff_view(
            account, _region(session, account.region_id), ctx.today()
        ), replaced

    view, replaced = await ctx.db.run_write(remove)
    await _remove_files(ctx, replaced)
    return view


async def _remove_files(ctx: Context, *keys: str | None) -> None:
    """Best effort, after the commit: a file left behind is logged, never a dangling key."""
    wanted = [k for k in keys if k]
    if not wanted:
        return
    try:
        await ctx.store.delete(*wanted)
    except StorageError:
        log.exception("could not remove replaced staff photo files", extra={"keys": wanted})


def village_agents(session: Session, ctx: Context, village_id: int) -> list[outputs.AgentCard]:
    get_region(session, village_id, level="village")
    return posted_agents(session, ctx, village_id)


def posted_agents(session: Session, ctx: Context, region_id: int) -> list[outputs.AgentCard]:
    """The public cards of the agents posted at a village station or a town centre."""
    rows = session.execute(
        select(Account)
        .where(
            Account.region_id == region_id,
            Account.role == "agent",
            Account.disabled_at.is_(None),
        )
        .order_by(Account.post.is_(None), Account.post, Account.id)
    ).scalars()
    # Public cards (挂牌上岗): anyone may see the photo, through a link that soon expires.
    now = ctx.now()
    ttl = timedelta(seconds=ctx.settings.storage.download_url_ttl_seconds)
    cards = []
    for agent in rows:
        url = ctx.store.presign_download(agent.photo_key, ttl, now) if agent.photo_key else None
        cards.append(outputs.agent_card(agent, ctx.today(), photo_url=url))
    return cards


def town_agents(session: Session, ctx: Context, dispatcher: Principal) -> list[outputs.StaffView]:
    """Every agent of the dispatcher's town: the centre's, then village by village."""
    town = dispatcher.region_id
    rows = session.execute(
        select(Account, Region)
        .join(Region, Region.id == Account.region_id)
        .where(within(town), Account.role == "agent")
        .order_by(Region.code, Account.post, Account.id)
    ).all()
    return [outputs.staff_view(account, region, ctx.today()) for account, region in rows]
