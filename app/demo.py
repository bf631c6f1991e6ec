"""Demo data for `make run`: one district, two towns, six villages, their staff, two residents,
and the shipped service catalogue enabled where its items say.

Every demo person logs in with the dev WeChat code `dev:<handle>` (openid `dev_<handle>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.service import set_phone
from app.catalogue.document import CatalogueDocument, read_document
from app.catalogue.service import import_document
from app.context import Context
from app.models import Account, Region
from app.regions.division_codes import load_regions, read_regions
from app.security.identity import id_number_check_char

CATALOGUE_FILE = Path(__file__).parent / "catalogue" / "data" / "catalogue.yaml"
# The demo district's tree, in the format of a county's own file (`daiban setup --regions`).
REGIONS_FILE = Path(__file__).parent / "regions" / "data" / "demo_district.csv"
AGENT_NAMES = [
    "刘桂兰",
    "王建军",
    "孙丽娟",
    "赵德明",
    "陈玉梅",
    "周国强",
    "吴秀芳",
    "郑海涛",
    "冯淑珍",
    "褚志刚",
    "蒋红霞",
    "沈卫东",
]
DISPATCHER_NAMES = ["李晓燕", "韩立波", "杨春华", "朱永明"]
SERVICE_HOURS = "周一至周日 8:30-12:00, 13:30-17:30 (全年无休)"


@dataclass(frozen=True)
class DemoPerson:
    handle: str
    role: str
    name: str
    where: str


def demo_id_number(region6: str, birth: str, seq: str) -> str:
    first17 = region6 + birth + seq
    return first17 + id_number_check_char(first17)


def seed_demo(session: Session, ctx: Context) -> list[DemoPerson] | None:
    """Insert the demo data unless any region exists; returns who can log in, or None."""
    if session.scalar(select(func.count()).select_from(Region)):
        return None
    people: list[DemoPerson] = []
    load_regions(session, read_regions(REGIONS_FILE.read_bytes(), REGIONS_FILE.name), ctx.now())
    tree = session.scalars(select(Region).order_by(Region.code)).all()
    district = next(r for r in tree if r.level == "district")
    session.add(_staff("admin", "admin", "王立新", district, "0632-8816001"))
    people.append(DemoPerson("admin", "admin", "王立新", district.name))
    villages: list[Region] = []
    for t, town in enumerate((r for r in tree if r.level == "town"), start=1):
        town.auto_dispatch = t == 2  # 西集镇 dispatches by itself; 店子镇 by hand (人工派单)
        for letter, dname in zip("ab", DISPATCHER_NAMES[2 * (t - 1) : 2 * t], strict=True):
            handle = f"dispatcher{t}{letter}"
            session.add(
                _staff(handle, "dispatcher", dname, town, f"0632-88{t}600{letter == 'b':d}")
            )
            people.append(DemoPerson(handle, "dispatcher", dname, town.name))
        villages += [r for r in tree if r.level == "village" and r.town_id == town.id]
    session.flush()
    for v, village in enumerate(villages, start=1):
        for post in ("A", "B"):
            handle = f"agent{v}{post.lower()}"
            name = AGENT_NAMES[2 * (v - 1) + (post == "B")]
            agent = _staff(handle, "agent", name, village, f"1380632{v:02d}{ord(post) - 64:02d}")
            agent.post = post
            session.add(agent)
            people.append(DemoPerson(handle, "agent", f"{name} ({post}岗)", village.name))
    residents = [
        (
            "resident1",
            "张秀英",
            villages[0],
            demo_id_number("370406", "19480312", "022"),
            "13906321234",
        ),
        (
            "resident2",
            "李建国",
            villages[3],
            demo_id_number("370406", "19650817", "031"),
            "13706325678",
        ),
    ]
    for handle, name, village, id_number, phone in residents:
        account = Account(
            role="resident", openid=f"dev_{handle}", name=name, region_id=village.id, on_duty=False
        )
        account.id_number_enc = ctx.cipher.encrypt(id_number, context="id_number")
        account.id_number_hash = ctx.cipher.lookup_hash(id_number, context="id_number")
        set_phone(account, ctx, phone)
        session.add(account)
        people.append(DemoPerson(handle, "resident", name, village.name))
    session.flush()
    import_document(
        session,
        shipped_catalogue(),
        actor_id=None,
        enable_within=district.id,
    )
    return people


@cache
def shipped_catalogue() -> CatalogueDocument:
    """The catalogue file in the repository, parsed once per process."""
    return read_document(CATALOGUE_FILE.read_bytes(), CATALOGUE_FILE.name)


def _staff(handle: str, role: str, name: str, region: Region, phone: str) -> Account:
    return Account(
        role=role,
        openid=f"dev_{handle}",
        name=name,
        region_id=region.id,
        work_phone=phone,
        service_hours=SERVICE_HOURS,
        on_duty=role == "agent",
    )


def demo_people(session: Session) -> list[DemoPerson]:
    """The demo logins present in the database (for the start-up banner)."""
    rows = session.execute(
        select(Account, Region)
        .join(Region, Region.id == Account.region_id)
        .where(Account.openid.like("dev\\_%", escape="\\"))
        .order_by(Account.id)
    ).all()
    return [
        DemoPerson((a.openid or "").removeprefix("dev_"), a.role, a.name or "", r.name)
        for a, r in rows
    ]
