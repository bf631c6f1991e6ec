"""bench/province.py's generator: a province of districts, towns, villages, staff, residents
and three years of orders, written into PostgreSQL by INSERT … SELECT, a month at a time.

The shape (the region tree, who works where, how many orders each village has) is decided
here in Python with a seeded random generator; the rows are made by PostgreSQL from that
shape (random() for the rest), so nothing crosses the wire per order. Every order follows
the transition table (app/orders/states.py) from submission to where it stands now: its
timeline, its rating, the reminders still ahead of it and, when recent, its messages, all
from one plan row per order in a temporary table.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from _postgres import dsn
from chinese_calendar import is_holiday, is_workday

ZONE = "Asia/Shanghai"
DAYS = 365 * 3 + 1  # three years ending today
TOWNS_PER_DISTRICT = 15
VILLAGES_PER_TOWN = (10, 30)  # uniform: 20 on average, 30,000 at scale 1.0
FULL_ORDERS = 20_000_000  # at scale 1.0; 200,000 per district
ORDERS_PER_RESIDENT = 2  # residents (accounts) = orders / 2: 10 M at scale 1.0
RESIDENT1_ORDERS = 10  # the template order and about nine before it
RESIDENT2_ORDERS = 6
SHARE_A = 0.65  # the A post (A岗) takes most of a station's orders, B the rest
MANUAL_TOWNS = 1 / 3  # towns that dispatch by hand (人工派单): their orders wait in a pool
# What the bulk load replaces: its tables lose their secondary indexes meanwhile.
BIG_TABLES = (
    "accounts",
    "orders",
    "order_events",
    "ratings",
    "reminders",
    "notifications",
    "item_enablements",
)
SIZED_TABLES = (*BIG_TABLES, "regions", "order_number_counters")

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
)
GIVEN = (
    "秀英 桂兰 建国 建军 丽娟 德明 玉梅 国强 秀芳 海涛 淑珍 志刚 红霞 卫东 桂英 玉兰 凤英 "
    "明 强 伟 芳 军 静 敏 磊 洋 勇 艳 杰 娟 涛 超 霞 平 刚 华 兰 英 梅 云 "
    "长江 文华 春生 秋菊 冬梅 立新 永明 金花 宝山 福海 广田 向阳 爱民 振华 庆丰"
).split()
PLACE = "东西南北前后上中下大小新旧高石白马龙凤山河湖泉林桥庄屯营集店寨岭峪沟坡洼堡沙杨柳桃李枣"
VILLAGE_ENDS = ("庄", "家庄", "村", "集", "屯", "店", "营", "寨", "峪", "沟", "庄子", "楼")
TOWN_ENDS = ("镇", "镇", "镇", "乡", "街道")


@dataclass
class Village:
    id: int
    code: str
    name: str
    town: Town
    weight: float = 1.0
    agents: tuple[int, int] = (0, 0)  # A and B posts
    agent_names: tuple[str, str] = ("", "")
    orders: float = 0.0  # over the three years
    first_resident: int = 0
    residents: int = 0


@dataclass
class Town:
    id: int
    code: str
    name: str
    district: District
    manual: bool
    villages: list[Village] = field(default_factory=list)
    dispatchers: tuple[int, int] = (0, 0)


@dataclass
class District:
    id: int
    code: str
    name: str
    towns: list[Town] = field(default_factory=list)


@dataclass
class Item:
    id: int
    version_id: int
    code: str
    kind: str
    promised_days: int
    required: list[tuple[str, str]]  # required materials' codes and names


@dataclass
class Stage:
    name: str
    seconds: float
    rows: int = 0


@dataclass
class Province:
    districts: list[District]
    items: list[Item]
    orders: int
    demo_district: int
    demo_town: int  # dispatcher1a's
    demo_village: int  # agent1a's and resident1's
    new_staff: list[tuple[Any, ...]]  # id, role, openid, name, region, post
    stages: list[Stage] = field(default_factory=list)

    @property
    def towns(self) -> list[Town]:
        return [t for d in self.districts for t in d.towns]

    @property
    def villages(self) -> list[Village]:
        return [v for t in self.towns for v in t.villages]


def _names(rng: random.Random, ends: Sequence[str], n: int) -> list[str]:
    return [rng.choice(SURNAMES) + rng.choice(PLACE) + rng.choice(ends) for _ in range(n)]


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


async def connect(url: str) -> Any:
    conn = await asyncpg.connect(dsn(url))
    for setting in (
        "synchronous_commit = off",
        "maintenance_work_mem = '2GB'",
        "work_mem = '512MB'",
        "temp_buffers = '2GB'",
        "max_parallel_maintenance_workers = 1",
        # Each month's statements are estimated dear enough for JIT, whose compiling took
        # longer (0.9 s a statement) than the statements' own work.
        "jit = off",
        # No foreign-key triggers while loading: the rows are made consistent, and a
        # per-row check (SELECT … FOR KEY SHARE of the parent) would cost more than the
        # insert. CHECK constraints still apply; `check_references` verifies afterwards.
        "session_replication_role = replica",
    ):
        await conn.execute(f"SET {setting}")
    return conn


class Timer:
    """Stages with their wall time, printed as they end."""

    def __init__(self, province: Province, say: Callable[[str], None]) -> None:
        self.province, self.say = province, say

    async def run(self, name: str, work: Awaitable[int | None]) -> int:
        started = time.perf_counter()
        rows = await work or 0
        stage = Stage(name, time.perf_counter() - started, rows)
        self.province.stages.append(stage)
        rows_said = f", {rows:,} rows" if rows else ""
        self.say(f"  {name}: {stage.seconds:.1f} s{rows_said}")
        return rows


# --- the shape ---------------------------------------------------------------------------


async def plan_province(conn: Any, scale: float, seed: int) -> Province:
    """The demo district kept as it is and grown to a district's size, and the others
    beside it; each village's share of the orders (lognormal), its agents and residents."""
    rng = random.Random(seed)
    districts_n = max(1, round(100 * scale))
    regions = await conn.fetch("SELECT * FROM regions ORDER BY code")
    accounts = await conn.fetch("SELECT id, role, openid, name, region_id, post FROM accounts")
    demo_d = next(r for r in regions if r["level"] == "district")
    next_region = int(max(r["id"] for r in regions)) + 1

    def new_region_id() -> int:
        nonlocal next_region
        next_region += 1
        return next_region - 1

    districts: list[District] = []
    for k in range(districts_n):
        if k == 0:
            district = District(demo_d["id"], demo_d["code"], demo_d["name"])
            have = [r for r in regions if r["level"] == "town"]
        else:
            # 37 CC DD: Shandong, cities 01-09, districts 11-22 (never the demo's 0406).
            code = f"37{1 + k // 12:02d}{11 + k % 12:02d}000000"
            name = rng.choice(SURNAMES) + rng.choice(PLACE) + rng.choice(("区", "县"))
            district = District(new_region_id(), code, name)
            have = []
        districts.append(district)
        for t in range(TOWNS_PER_DISTRICT):
            if t < len(have):
                row = have[t]
                town = Town(row["id"], row["code"], row["name"], district, not row["auto_dispatch"])
                old = [r for r in regions if r["level"] == "village" and r["town_id"] == row["id"]]
                count = sum(VILLAGES_PER_TOWN) // 2  # the demo towns: a typical town's
            else:
                code = f"{district.code[:6]}{101 + t:03d}000"
                town = Town(
                    new_region_id(),
                    code,
                    _names(rng, TOWN_ENDS, 1)[0],
                    district,
                    rng.random() < MANUAL_TOWNS,
                )
                old, count = [], rng.randint(*VILLAGES_PER_TOWN)
            district.towns.append(town)
            names = _names(rng, VILLAGE_ENDS, count)
            for j in range(count):
                if j < len(old):
                    village = Village(old[j]["id"], old[j]["code"], old[j]["name"], town)
                else:
                    code = f"{town.code[:9]}{201 + j:03d}"
                    village = Village(new_region_id(), code, names[j], town)
                town.villages.append(village)
    demo_district = districts[0]
    demo_town = demo_district.towns[0]  # 店子镇: dispatcher1a's, by hand
    demo_village = demo_town.villages[0]  # 店子村: agent1a's and resident1's

    # Unequal villages: lognormal weights. Then the demo accounts see typical volumes:
    # 店子村 is the median village, 店子镇 a town of average volume, the demo district one
    # of average volume (1/100 of the orders at scale 1.0).
    villages = [v for d in districts for t in d.towns for v in t.villages]
    for v in villages:
        v.weight = rng.lognormvariate(0.0, 0.8)
    weights = sorted(v.weight for v in villages)
    total = sum(weights)
    town_mean, district_mean = total / (len(districts) * TOWNS_PER_DISTRICT), total / len(districts)
    demo_village.weight = weights[len(weights) // 2]
    for group, target in (
        (demo_town.villages[1:], town_mean - demo_village.weight),
        ([v for t in demo_district.towns[1:] for v in t.villages], district_mean - town_mean),
    ):
        factor = target / sum(v.weight for v in group)
        for v in group:
            v.weight *= factor
    total = sum(v.weight for v in villages)
    orders = round(FULL_ORDERS * scale)
    for v in villages:
        v.orders = orders * v.weight / total

    # Staff: the demo's where they are, two agents per other village (A and B posts), two
    # dispatchers per other town, an admin per other district.
    next_account = int(max(a["id"] for a in accounts)) + 1
    new_staff: list[tuple[Any, ...]] = []

    def staff_id(region: int, role: str, post: str | None, letter: str) -> tuple[int, str]:
        nonlocal next_account
        known = next(
            (
                a
                for a in accounts
                if a["region_id"] == region
                and a["role"] == role
                and (a["post"] == post if role == "agent" else a["openid"].endswith(letter))
            ),
            None,
        )
        if known is not None:
            return known["id"], known["name"]
        name = person(rng)
        new_staff.append((next_account, role, f"prov_{role}_{region}_{letter}", name, region, post))
        next_account += 1
        return next_account - 1, name

    for district in districts:
        staff_id(district.id, "admin", None, "")
        for town in district.towns:
            town.dispatchers = (
                staff_id(town.id, "dispatcher", None, "a")[0],
                staff_id(town.id, "dispatcher", None, "b")[0],
            )
            for v in town.villages:
                a, b = staff_id(v.id, "agent", "A", "a"), staff_id(v.id, "agent", "B", "b")
                v.agents, v.agent_names = (a[0], b[0]), (a[1], b[1])
    # Residents: half as many as the village's orders, numbered village by village.
    for v in villages:
        v.residents = max(2, round(v.orders / ORDERS_PER_RESIDENT))
        v.first_resident = next_account
        next_account += v.residents
    items = await read_items(conn)
    return Province(
        districts, items, orders, demo_district.id, demo_town.id, demo_village.id, new_staff
    )


async def read_items(conn: Any) -> list[Item]:
    rows = await conn.fetch(
        """SELECT i.id, i.code, v.id AS version_id, v.kind, v.promised_days, v.materials
        FROM catalogue_items i JOIN item_versions v ON v.id = i.current_version_id
        WHERE i.retired_at IS NULL ORDER BY i.code"""
    )
    items = []
    for r in rows:
        materials = json.loads(r["materials"])
        required = [(m["code"], m["name"]) for m in materials if m.get("required")]
        items.append(
            Item(r["id"], r["version_id"], r["code"], r["kind"], r["promised_days"], required)
        )
    return items


# --- the structure: regions, staff, enablements, residents -------------------------------


async def write_structure(conn: Any, p: Province) -> int:
    known = {r["id"] for r in await conn.fetch("SELECT id FROM regions")}
    now = datetime.now(UTC)
    rows: list[tuple[Any, ...]] = []
    for d in p.districts:
        if d.id not in known:
            rows.append((d.id, d.code, d.name, "district", None, None, None, True))
        for t in d.towns:
            if t.id not in known:
                rows.append((t.id, t.code, t.name, "town", d.id, d.id, None, not t.manual))
            for v in t.villages:
                if v.id not in known:
                    rows.append((v.id, v.code, v.name, "village", t.id, d.id, t.id, True))
    await conn.copy_records_to_table(
        "regions",
        records=rows,
        columns=[
            "id",
            "code",
            "name",
            "level",
            "parent_id",
            "district_id",
            "town_id",
            "auto_dispatch",
        ],
    )
    service_hours = "周一至周日 8:30-12:00, 13:30-17:30 (全年无休)"
    started = now - timedelta(days=DAYS + 30)
    staff = [
        (
            i,
            role,
            openid,
            name,
            region,
            post,
            f"138{i % 100_000_000:08d}",
            service_hours,
            role == "agent",
            started,
            started,
            started,
        )
        for i, role, openid, name, region, post in p.new_staff
    ]
    await conn.copy_records_to_table(
        "accounts",
        records=staff,
        columns=[
            "id",
            "role",
            "openid",
            "name",
            "region_id",
            "post",
            "work_phone",
            "service_hours",
            "on_duty",
            "created_at",
            "updated_at",
            "last_seen_at",
        ],
    )
    # Every new town and village offers what the demo's first town and village offer.
    demo_town, demo_village = p.demo_town, p.demo_village
    new_towns = [t.id for t in p.towns if t.id not in known]
    new_villages = [v.id for v in p.villages if v.id not in known]
    for model, ids in ((demo_town, new_towns), (demo_village, new_villages)):
        await conn.execute(
            """INSERT INTO item_enablements (region_id, item_id)
            SELECT r, e.item_id FROM unnest($1::bigint[]) r, item_enablements e
            WHERE e.region_id = $2 ORDER BY r, e.item_id""",
            ids,
            model,
        )
    return len(rows) + len(staff)


async def write_villages_table(conn: Any, p: Province) -> None:
    """The shape as a temporary table: what the statements below read per village."""
    await conn.execute(
        """CREATE TEMP TABLE prov_villages (
            village_id bigint, town_id bigint, district_id bigint, manual boolean,
            agent_a bigint, agent_b bigint, agent_a_name text, agent_b_name text,
            dispatcher_a bigint, dispatcher_b bigint, orders float8,
            first_resident bigint, residents int)"""
    )
    await conn.copy_records_to_table(
        "prov_villages",
        records=[
            (
                v.id,
                v.town.id,
                v.town.district.id,
                v.town.manual,
                v.agents[0],
                v.agents[1],
                v.agent_names[0],
                v.agent_names[1],
                v.town.dispatchers[0],
                v.town.dispatchers[1],
                v.orders,
                v.first_resident,
                v.residents,
            )
            for v in p.villages
        ],
    )


async def write_residents(conn: Any, p: Province, say: Callable[[str], None]) -> int:
    """Residents of each village: a name, an openid, phone and ID number as a real account
    has them (the ciphertext of resident2's, which decrypts with this database's keys; the
    look-up hashes each their own), created over the three years, seen within the last."""
    model = await conn.fetchrow(
        "SELECT phone_enc, id_number_enc FROM accounts WHERE openid = 'dev_resident2'"
    )
    villages = p.villages
    done, step = 0, 2_000_000
    batch: list[int] = []
    count = 0
    for i, v in enumerate(villages):
        batch.append(v.id)
        count += v.residents
        if count < step and i + 1 < len(villages):
            continue
        await conn.execute(
            """INSERT INTO accounts (id, role, openid, name, phone_enc, phone_hash,
                id_number_enc, id_number_hash, region_id, on_duty, phone_verified_at,
                created_at, updated_at, last_seen_at)
            SELECT a.id, 'resident', 'prov_r' || a.id,
                   ($3::text[])[1 + (a.id * 7919) % cardinality($3::text[])]
                     || ($4::text[])[1 + (a.id * 104729) % cardinality($4::text[])],
                   $1, encode(sha256(('phone' || a.id)::bytea), 'hex'),
                   $2, encode(sha256(('id' || a.id)::bytea), 'hex'),
                   v.village_id, false, a.created, a.created, a.created,
                   greatest(a.created, now() - random() * interval '300 days')
            FROM prov_villages v
            CROSS JOIN LATERAL (
                SELECT v.first_resident + k AS id,
                       now() - interval '1 day' * ($6 + 30) * power(random(), 0.7) AS created
                FROM generate_series(0, v.residents - 1) k) a
            WHERE v.village_id = ANY($5::bigint[])
            ORDER BY a.id""",
            model["phone_enc"],
            model["id_number_enc"],
            list(SURNAMES),
            GIVEN,
            batch,
            DAYS,
        )
        done += count
        say(f"    residents: {done:,}")
        batch, count = [], 0
    return done


# --- indexes -----------------------------------------------------------------------------


@dataclass
class SavedIndex:
    table: str
    name: str
    definition: str
    constraint: str | None  # "PRIMARY KEY" or "UNIQUE" for a constraint's index


async def drop_indexes(conn: Any) -> list[SavedIndex]:
    """The big tables' indexes and unique constraints, as pg_indexes has them, then
    dropped; primary keys too, but those that a foreign key needs (orders, accounts,
    ratings: their rows come in key order, which keeps their upkeep cheap)."""
    rows = await conn.fetch(
        """SELECT i.tablename, i.indexname, i.indexdef, c.contype::text AS contype,
            EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f'
                    AND f.confrelid = ('public.' || i.tablename)::regclass) AS referenced
        FROM pg_indexes i
        LEFT JOIN pg_constraint c ON c.conname = i.indexname
            AND c.conrelid = ('public.' || i.tablename)::regclass
        WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
        ORDER BY i.tablename, c.contype = 'p' DESC, i.indexname""",
        list(BIG_TABLES),
    )
    saved = []
    for r in rows:
        kind = {"p": "PRIMARY KEY", "u": "UNIQUE"}.get(r["contype"])
        if kind == "PRIMARY KEY" and r["referenced"]:
            continue
        saved.append(SavedIndex(r["tablename"], r["indexname"], r["indexdef"], kind))
        if kind:
            await conn.execute(f'ALTER TABLE {r["tablename"]} DROP CONSTRAINT "{r["indexname"]}"')
        else:
            await conn.execute(f'DROP INDEX "{r["indexname"]}"')
    return saved


async def create_indexes(
    conn: Any, saved: list[SavedIndex], timer: Timer, say: Callable[[str], None]
) -> int:
    # The timeline's first: its sorts spill the most to temporary files, and do so while
    # the space that the other indexes will take is still free.
    for index in sorted(saved, key=lambda i: i.table != "order_events"):

        async def build(index: SavedIndex = index) -> int:
            await conn.execute(index.definition)
            if index.constraint:
                await conn.execute(
                    f'ALTER TABLE {index.table} ADD CONSTRAINT "{index.name}" '
                    f'{index.constraint} USING INDEX "{index.name}"'
                )
            return 0

        await timer.run(f"index {index.name}", build())
    return len(saved)


# --- orders ------------------------------------------------------------------------------

# Moments in the plan are whole epoch seconds (bigint): cheap arithmetic, and Asia/Shanghai
# has had no summer time since 1991, so local time is UTC + 8 h (28,800 s).
# w(): a moment moved into working hours (8:30-17:30 local, every day: 全年无休): before,
# to 8:30 that day; after, to 8:30 the next; plus up to 90 minutes of its own, so that a
# morning's work does not all land on one second. Inlined by PostgreSQL (SQL, IMMUTABLE).
FUNCTIONS = """
CREATE FUNCTION pg_temp.w(e bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN (e + 28800) % 86400 < 30600 THEN e - (e + 28800) % 86400 + 30600 + e % 5400
    WHEN (e + 28800) % 86400 >= 63000 THEN e - (e + 28800) % 86400 + 117000 + e % 5400
    ELSE e END
$$;
CREATE FUNCTION pg_temp.mark(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00'
$$;
CREATE FUNCTION pg_temp.expo(u float8, mean float8) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT floor(-ln(1 - u) * mean)::bigint
$$
"""

# One plan row per order of the month: who, what, where, and every moment of its life as
# it would be (some still to come); the statements after it keep what has happened by now.
# The draws are made once per row (`raw`, in its select list); `s` turns them into choices
# and durations; each step of the life is then one LATERAL (… OFFSET 0), computed once per
# row and read by the next. Every moment is a whole second, so that a reminder's basis
# (mark) is what Python's isoformat() writes.
# $1 the month's first day, $2 its days' shares, $3 the hours', $4 the items', $5 the
# month's share of the orders, $6 promised days per item, $7 now (epoch s), $8 the first
# moment (epoch s), $9 whether an item has a material to ask again for, $10 the last id so
# far, $11 the month's first moment (epoch s).
PLAN = f"""
INSERT INTO plan
WITH raw AS MATERIALIZED (
  SELECT v.village_id, v.town_id, v.district_id, v.manual, v.agent_a, v.agent_b,
    v.agent_a_name, v.agent_b_name, v.dispatcher_a, v.dispatcher_b, v.first_resident,
    v.residents,
    random() AS u_day, random() AS u_hour, random() AS u_sec, random() AS u_item,
    random() AS u_res, random() AS u_post, random() AS u_chan,
    random() AS u_fate, random() AS u_assign, random() AS u_take, random() AS u_supp,
    random() AS u_supp_wait, random() AS u_accept, random() AS u_hold, random() AS u_hold_len,
    random() AS u_late, random() AS u_work, random() AS u_deliver, random() AS u_rated,
    random() AS u_rate_wait, random() AS u_grade, random() AS u_green, random() AS u_visit,
    random() AS u_end, random() AS u_method, random() AS u_denied, random() AS u_web,
    random() AS u_comment, random() AS u_disp
  FROM prov_villages v
  CROSS JOIN LATERAL generate_series(1, floor(v.orders * $5 + random())::int) k
), s AS MATERIALIZED (
  SELECT village_id, town_id, district_id,
    width_bucket(u_day, $2::float8[]) AS day_no,
    $11::bigint + (width_bucket(u_day, $2::float8[]) - 1) * 86400
      + (width_bucket(u_hour, $3::float8[]) - 1) * 3600 + floor(u_sec * 3600)::bigint AS sub,
    width_bucket(u_item, $4::float8[]) AS item,
    ($6::int[])[width_bucket(u_item, $4::float8[])] AS days,
    CASE WHEN u_chan < 0.08 THEN 'agent' ELSE 'mini_program' END AS channel,
    manual AND u_chan >= 0.08 AS pooled,
    -- a few residents bring many orders (families, the elderly), most one or two
    first_resident + floor(residents * power(u_res, 1.6))::bigint AS resident_id,
    CASE WHEN u_post < {SHARE_A} THEN agent_a ELSE agent_b END AS agent_id,
    CASE WHEN u_post < {SHARE_A} THEN agent_a_name ELSE agent_b_name END AS agent_name,
    CASE WHEN u_post < {SHARE_A} THEN 'auto_a' ELSE 'auto_b' END AS rule,
    CASE WHEN u_disp < 0.6 THEN dispatcher_a ELSE dispatcher_b END AS dispatcher_id,
    CASE WHEN u_fate < 0.02 THEN 'cancel' WHEN u_fate < 0.03 THEN 'expire'
         WHEN u_fate < 0.06 THEN 'reject' WHEN u_fate < 0.067 THEN 'terminate'
         ELSE 'done' END AS fate,
    -- asked for a supplement (一次性告知): a quarter of those taken, and all that expire
    u_fate >= 0.02 AND u_fate < 0.03
      OR (u_fate >= 0.03 AND u_supp < 0.25
          AND ($9::boolean[])[width_bucket(u_item, $4::float8[])]) AS supplemented,
    u_fate >= 0.067 AND ($6::int[])[width_bucket(u_item, $4::float8[])] > 0
      AND u_hold < 0.03 AS held,
    u_late < 0.06 AS late, u_rated < 0.45 AS rated,
    CASE WHEN u_rated >= 0.45 THEN 3 WHEN u_grade < 0.82 THEN 5 WHEN u_grade < 0.93 THEN 4
         WHEN u_grade < 0.97 THEN 3 WHEN u_grade < 0.99 THEN 2 ELSE 1 END AS grade,
    CASE WHEN u_denied < 0.03 THEN 'denied' ELSE 'approved' END AS outcome,
    CASE WHEN u_method < 0.5 THEN 'pickup' WHEN u_method < 0.95 THEN 'delivery'
         ELSE 'post' END AS delivery_method,
    CASE WHEN u_web < 0.08 THEN 'web' ELSE 'app' END AS rating_channel,
    u_comment < 0.2 AS commented, u_green < 0.15 AS green, u_visit < 0.04 AS home_visit,
    u_end, u_work,
    pg_temp.expo(u_assign, 5400) AS d_assign,  -- a dispatcher's pool: 1.5 h on average
    300 + pg_temp.expo(u_take, 7200) AS d_take,
    300 + floor(u_supp_wait * 3300)::bigint AS d_supp_req,
    3600 + pg_temp.expo(u_supp_wait, 86400) AS d_supp,  -- the resident's: a day
    300 + floor(u_accept * 5100)::bigint AS d_accept,
    CASE WHEN u_fate >= 0.067 AND ($6::int[])[width_bucket(u_item, $4::float8[])] > 0
          AND u_hold < 0.03
         THEN 172800 + floor(u_hold_len * 691200)::bigint ELSE 0 END AS pause,  -- 2-10 days
    600 + floor(u_work * 6600)::bigint AS d_at_once,  -- 即办: within two hours
    600 + pg_temp.expo(u_deliver, 64800) AS d_deliver,
    least(pg_temp.expo(u_rate_wait, 129600), 590400) AS d_rate
  FROM raw
)
SELECT
  $10::bigint + row_number() OVER (ORDER BY sub, village_id) AS id,
  'DB' || to_char($1::date + day_no - 1, 'YYYYMMDD') || lpad((coalesce(n.last, 0)
     + row_number() OVER (PARTITION BY day_no ORDER BY sub, village_id))::text, 6, '0')
    AS number,
  $1::date + day_no - 1 AS day,
  resident_id, village_id, town_id, district_id, item, days, channel, pooled, rule,
  agent_id, agent_name, dispatcher_id, fate, green, home_visit,
  to_timestamp(sub) AS sub,
  to_timestamp(CASE WHEN fate <> 'cancel' OR assigned < ended THEN assigned END) AS assigned_at,
  to_timestamp(CASE WHEN fate <> 'cancel' THEN taken END) AS taken_at,
  to_timestamp(supp_req) AS supp_req_at, to_timestamp(supp) AS supp_at,
  to_timestamp(accepted) AS accepted_at, to_timestamp(due0) AS due0,
  to_timestamp(due0 + pause) AS due_at,
  to_timestamp(held_at) AS held_at, to_timestamp(held_at + pause) AS resumed_at,
  to_timestamp(completed) AS completed_at,
  to_timestamp(CASE WHEN fate IN ('done', 'terminate')
                     AND due0 + pause + 32400 < coalesce(completed, ended)
                    THEN due0 + pause + 32400 END) AS overdue_at,
  to_timestamp(delivered) AS delivered_at,
  to_timestamp(closed) AS closed_at,
  to_timestamp(ended) AS ended_at,
  rated, grade, outcome, delivery_method, rating_channel, commented, u_end
FROM s
CROSS JOIN LATERAL (SELECT CASE WHEN pooled THEN pg_temp.w(sub + d_assign) ELSE sub END
                      AS assigned OFFSET 0) t1
CROSS JOIN LATERAL (SELECT pg_temp.w(assigned + d_take) AS taken OFFSET 0) t2
CROSS JOIN LATERAL (
  SELECT CASE WHEN supplemented THEN taken + d_supp_req END AS supp_req,
         CASE WHEN supplemented AND fate <> 'expire' THEN pg_temp.w(taken + d_supp) END
           AS supp
  OFFSET 0) t3
CROSS JOIN LATERAL (
  SELECT CASE WHEN fate IN ('done', 'terminate') THEN pg_temp.w(coalesce(supp, taken) + d_accept)
         END AS accepted
  OFFSET 0) t4
CROSS JOIN LATERAL (
  -- the end (24:00 local) of the last day: promised working days as calendar days
  SELECT accepted - (accepted + 28800) % 86400 + (ceil(days * 1.4)::bigint + 1) * 86400 AS due0
  OFFSET 0) t5
CROSS JOIN LATERAL (
  SELECT CASE WHEN held THEN pg_temp.w(accepted + (due0 - accepted) * 3 / 10) END AS held_at
  OFFSET 0) t6
CROSS JOIN LATERAL (
  -- done within the promised time (late: 6 %); after a hold, once it has resumed
  SELECT CASE WHEN fate <> 'done' THEN NULL
              WHEN days = 0 THEN accepted + d_at_once
              WHEN late THEN due0 + pause + floor((due0 - accepted) * u_work * 0.5)::bigint
              WHEN held
                THEN held_at + pause + floor((due0 - held_at) * (0.1 + u_work * 0.6))::bigint
              ELSE accepted + floor((due0 - accepted) * (0.2 + u_work * 0.75))::bigint
         END AS finished
  OFFSET 0) t6b
CROSS JOIN LATERAL (SELECT pg_temp.w(finished) AS completed OFFSET 0) t7
CROSS JOIN LATERAL (SELECT pg_temp.w(completed + d_deliver) AS delivered OFFSET 0) t8
CROSS JOIN LATERAL (
  SELECT CASE WHEN rated THEN delivered + d_rate ELSE delivered + 604860 END AS closed,
         CASE fate
           WHEN 'cancel' THEN assigned + floor((taken - assigned) * u_end)::bigint + 60
           WHEN 'expire' THEN taken + d_supp_req + 2592000
           WHEN 'reject' THEN coalesce(supp, taken) + 600 + floor(u_end * 6000)::bigint
           WHEN 'terminate' THEN accepted + floor((due0 - accepted) * u_end * 0.8)::bigint
         END AS stopped
  OFFSET 0) t9
CROSS JOIN LATERAL (
  SELECT CASE WHEN fate = 'done' THEN closed ELSE pg_temp.w(stopped) END AS ended OFFSET 0) t10
LEFT JOIN order_number_counters n ON n.day = $1::date + day_no - 1
WHERE sub <= $7 AND sub >= $8
ORDER BY sub, village_id
"""

PLAN_TABLE = """
CREATE TEMP TABLE plan (
  id bigint, number text, day date, resident_id bigint, village_id bigint, town_id bigint,
  district_id bigint, item int, days int, channel text, pooled boolean, rule text,
  agent_id bigint, agent_name text, dispatcher_id bigint, fate text, green boolean,
  home_visit boolean, sub timestamptz, assigned_at timestamptz, taken_at timestamptz,
  supp_req_at timestamptz, supp_at timestamptz, accepted_at timestamptz, due0 timestamptz,
  due_at timestamptz, held_at timestamptz, resumed_at timestamptz, completed_at timestamptz,
  overdue_at timestamptz, delivered_at timestamptz, closed_at timestamptz,
  ended_at timestamptz, rated boolean, grade int, outcome text, delivery_method text,
  rating_channel text, commented boolean, u_end float8)
"""


def _at(column: str) -> str:
    """The plan's moment if it has come by $1 (now), else NULL."""
    return f"CASE WHEN p.{column} <= $1 THEN p.{column} END"


STATUS = """CASE
  WHEN p.ended_at <= $1 THEN CASE p.fate WHEN 'done' THEN 'closed' WHEN 'reject' THEN 'rejected'
                                         ELSE 'cancelled' END
  WHEN p.delivered_at <= $1 THEN 'delivered'
  WHEN p.completed_at <= $1 THEN 'completed'
  WHEN p.held_at <= $1 AND p.resumed_at > $1 THEN 'on_hold'
  WHEN p.accepted_at <= $1 THEN 'accepted'
  WHEN p.supp_req_at <= $1 AND coalesce(p.supp_at > $1, true) THEN 'supplement_required'
  WHEN p.taken_at <= $1 THEN 'reviewing'
  WHEN p.assigned_at <= $1 THEN 'assigned'
  ELSE 'submitted' END"""

# $1 now, $2 item ids, $3 version ids, $4 materials before 受理, $5 after, $6 tracked kinds,
# $7 files removed after (days).
ORDERS = f"""
INSERT INTO orders (id, number, resident_id, village_id, town_id, district_id, item_id,
  item_version_id, status, channel, green_channel, green_channel_source, home_visit, priority,
  materials, agent_id, first_contact_id, assigned_at, supplement_requested_at,
  supplement_rounds, submitted_at, accepted_at, promised_days, due_at, due_provisional,
  clock_started_at, clock_days, overdue_at, remaining_days, completed_at, outcome,
  outcome_note, fees_collected_fen, delay_explanation, delivered_at, delivery_method,
  closed_at, ended_at, files_removed_at, progress, updated_at)
SELECT p.id, p.number, p.resident_id, p.village_id, p.town_id, p.district_id,
  ($2::bigint[])[p.item], ($3::bigint[])[p.item], s.status, p.channel, p.green,
  CASE WHEN p.green THEN 'age' END, p.home_visit,
  CASE WHEN p.green OR p.home_visit THEN 1 ELSE 0 END,
  CASE WHEN p.accepted_at <= $1 THEN ($5::json[])[p.item] ELSE ($4::json[])[p.item] END,
  CASE WHEN p.assigned_at <= $1 THEN p.agent_id END,
  CASE WHEN p.assigned_at <= $1 THEN p.agent_id END,
  {_at("assigned_at")}, {_at("supp_req_at")},
  CASE WHEN p.supp_req_at <= $1 THEN 1 ELSE 0 END,
  p.sub, {_at("accepted_at")}, p.days,
  CASE WHEN p.accepted_at <= $1 THEN
    CASE WHEN p.resumed_at > $1 THEN p.due0 ELSE p.due_at END END,
  false,
  CASE WHEN p.resumed_at <= $1 THEN p.resumed_at ELSE {_at("accepted_at")} END,
  CASE WHEN p.accepted_at <= $1 THEN p.days END,
  {_at("overdue_at")},
  CASE WHEN s.status = 'on_hold'
    THEN greatest(0, ceil(extract(epoch FROM p.due0 - p.held_at) / 86400 / 1.4))::int END,
  {_at("completed_at")},
  CASE WHEN p.completed_at <= $1 THEN p.outcome END,
  CASE WHEN p.completed_at <= $1 AND p.outcome = 'denied' THEN '不符合办理条件' END,
  0,
  CASE WHEN p.overdue_at <= least($1, p.completed_at) AND p.u_end < 0.7
       THEN '需上级部门审批,等待回复' END,
  CASE WHEN p.fate = 'done' THEN {_at("delivered_at")} END,
  CASE WHEN p.delivered_at <= $1 AND p.fate = 'done' THEN p.delivery_method END,
  CASE WHEN p.fate = 'done' THEN {_at("closed_at")} END,
  {_at("ended_at")},
  CASE WHEN p.ended_at + $7::int * interval '1 day' + interval '4 hours' <= $1
       THEN p.ended_at + $7::int * interval '1 day' + interval '4 hours' END,
  CASE WHEN ($6::text[])[p.item] <> '' THEN '{{"parts": []}}'::json END,
  greatest(p.sub, {_at("assigned_at")}, {_at("taken_at")}, {_at("supp_req_at")}, {_at("supp_at")},
           {_at("accepted_at")}, {_at("held_at")}, {_at("resumed_at")}, {_at("completed_at")},
           {_at("delivered_at")}, {_at("ended_at")})
FROM plan p CROSS JOIN LATERAL (SELECT {STATUS} AS status) s
ORDER BY p.id
"""

# The timeline: each step the order has taken by now, with the template order's notes and
# data where the template has the step, the order's own people, times and due date. The
# data is written as the service writes it (compact JSON), made only for the steps kept.
# $1 now, $2 the material asked again per item (a JSON string), $3 its name (a JSON
# string), $4 the pool note, $5 the pool data, $6 the supplement reason (a JSON string).
EVENTS = """
INSERT INTO order_events (order_id, at, actor_id, actor_role, action, from_status, to_status,
  note, data)
SELECT p.id, e.at, e.actor_id, e.actor_role, e.action, e.from_status, e.to_status, e.note,
  CASE e.action
    WHEN 'pool' THEN $5::json
    WHEN 'assign' THEN (CASE
      WHEN p.pooled THEN '{"agentId":' || p.agent_id || ',"agentName":'
        || to_json(p.agent_name) || '}'
      ELSE '{"rule":"' || CASE WHEN p.channel = 'agent' THEN 'entered_by_agent' ELSE p.rule END
        || '","agentId":' || p.agent_id || ',"agentName":' || to_json(p.agent_name) || '}'
      END)::json
    WHEN 'request_supplement' THEN ('{"missing":[{"code":' || ($2::text[])[p.item]
      || ',"name":' || ($3::text[])[p.item] || ',"reason":' || $6::text || '}],"round":1}')::json
    WHEN 'supplement' THEN ('{"codes":[' || ($2::text[])[p.item] || ']}')::json
    WHEN 'accept' THEN ('{"dueAt":"' || pg_temp.mark(p.due0) || '"}')::json
    WHEN 'hold' THEN ('{"remainingDays":' || greatest(0, ceil(
      extract(epoch FROM p.due0 - p.held_at) / 86400 / 1.4))::int || '}')::json
  END
FROM plan p CROSS JOIN LATERAL (VALUES
  (p.sub, CASE WHEN p.channel = 'agent' THEN p.agent_id ELSE p.resident_id END,
   CASE WHEN p.channel = 'agent' THEN 'agent' ELSE 'resident' END, 'submit', NULL::text,
   'submitted', NULL::text),
  (CASE WHEN p.pooled THEN p.sub END, NULL, 'system', 'pool', 'submitted', 'submitted',
   $4::text),
  (p.assigned_at, CASE WHEN p.pooled THEN p.dispatcher_id END,
   CASE WHEN p.pooled THEN 'dispatcher' ELSE 'system' END, 'assign', 'submitted', 'assigned',
   CASE WHEN p.channel = 'agent' THEN '代办员代为委托,由录入的代办员承办'
        WHEN p.pooled THEN NULL
        WHEN p.rule = 'auto_a' THEN '自动派单给本村A岗代办员'
        ELSE 'A岗不在岗,自动派单给本村B岗代办员' END),
  (CASE WHEN p.fate = 'cancel' THEN p.ended_at END, p.resident_id, 'resident', 'cancel',
   CASE WHEN p.assigned_at IS NULL THEN 'submitted' ELSE 'assigned' END, 'cancelled', NULL),
  (p.taken_at, p.agent_id, 'agent', 'take', 'assigned', 'reviewing', NULL),
  (p.supp_req_at, p.agent_id, 'agent', 'request_supplement', 'reviewing',
   'supplement_required', NULL),
  (p.supp_at, p.resident_id, 'resident', 'supplement', 'supplement_required', 'reviewing',
   NULL),
  (CASE WHEN p.fate = 'expire' THEN p.ended_at END, NULL, 'system', 'expire',
   'supplement_required', 'cancelled', '一次性告知补正后30天内未补正材料,系统自动撤回委托'),
  (CASE WHEN p.fate = 'reject' THEN p.ended_at END, p.agent_id, 'agent', 'reject',
   'reviewing', 'rejected', '不符合办理条件'),
  (p.accepted_at, p.agent_id, 'agent', 'accept', 'reviewing', 'accepted', NULL),
  (p.held_at, p.agent_id, 'agent', 'hold', 'accepted', 'on_hold', '等待部门审核结果'),
  (p.resumed_at, p.agent_id, 'agent', 'resume', 'on_hold', 'accepted', NULL),
  (CASE WHEN p.fate = 'terminate' THEN p.ended_at END, p.agent_id, 'agent', 'terminate',
   'accepted', 'cancelled', '群众申请终止办理'),
  (p.completed_at, p.agent_id, 'agent', 'complete', 'accepted', 'completed',
   CASE WHEN p.outcome = 'denied' THEN '不符合办理条件' END),
  (p.delivered_at, p.agent_id, 'agent', 'deliver', 'completed', 'delivered', NULL),
  (CASE WHEN p.rated THEN p.closed_at END, p.resident_id, 'resident', 'rate', 'delivered',
   'closed', NULL),
  (CASE WHEN NOT p.rated THEN p.closed_at END, NULL, 'system', 'close', 'delivered', 'closed',
   '7天内未评价,默认基本满意')
) AS e(at, actor_id, actor_role, action, from_status, to_status, note)
WHERE e.at <= $1
"""

GOOD = '["态度好"]', '["办事快"]', '["材料一次说清"]', '["热情耐心"]', '["全程代办省心"]'
# Every order that ended by being handed back has its rating: the resident's, or the
# default one when the window passed; a third of the refused ones were rated too.
# $1 now, $2 item ids, $3 good tags.
RATINGS = """
INSERT INTO ratings (order_id, resident_id, agent_id, village_id, town_id, district_id, item_id,
  grade, tags, comment, comment_status, is_default, rated_at, excluded, order_outcome, channel)
SELECT p.id, p.resident_id, p.agent_id, p.village_id, p.town_id, p.district_id,
  ($2::bigint[])[p.item], r.grade,
  CASE WHEN r.grade >= 4 AND NOT r.is_default
       THEN ($3::json[])[1 + (p.id % cardinality($3::json[]))]
       WHEN r.grade <= 2 THEN '["超时"]'::json ELSE '[]'::json END,
  CASE WHEN p.commented AND NOT r.is_default THEN '代办员很负责,谢谢' END,
  CASE WHEN p.commented AND NOT r.is_default THEN 'passed' ELSE 'none' END,
  r.is_default, r.at, false, r.outcome, r.channel
FROM plan p CROSS JOIN LATERAL (
  SELECT p.closed_at AS at, p.grade, NOT p.rated AS is_default, 'done' AS outcome,
         CASE WHEN p.rated THEN p.rating_channel ELSE 'default' END AS channel
  WHERE p.fate = 'done' AND p.closed_at <= $1
  UNION ALL
  SELECT p.ended_at + interval '5 hours', 3 + (p.id % 3)::int, false, 'refused', 'app'
  WHERE p.fate = 'reject' AND p.u_end < 0.33 AND p.ended_at + interval '5 hours' <= $1) r
ORDER BY p.id
"""

# The reminders a live system would still hold as pending: each written when the order
# entered the state it watches (by now), due later than now. Those already due were fired
# by the ticks before; a tick's cost is measured by bringing the next ones forward.
REMINDERS = """
INSERT INTO reminders (order_id, kind, basis, due_at, status)
SELECT p.id, r.kind, pg_temp.mark(r.basis), r.due, 'pending'
FROM (SELECT * FROM plan WHERE sub > $1::timestamptz - interval '100 days') p
CROSS JOIN LATERAL (VALUES
  ('take_remind', p.assigned_at, p.assigned_at,
   to_timestamp(pg_temp.w(extract(epoch FROM p.assigned_at)::bigint + 7200))),
  ('take_escalate', p.assigned_at, p.assigned_at, p.assigned_at + interval '1 day'),
  ('supplement_remind', p.supp_req_at, p.supp_req_at, p.supp_req_at + interval '3 days'),
  ('supplement_expire', p.supp_req_at, p.supp_req_at,
   to_timestamp(pg_temp.w(extract(epoch FROM p.supp_req_at)::bigint + 2592000))),
  -- 催办 the morning (9:00 local) of the last day, 督办 the morning after it
  ('due_soon', CASE WHEN p.held_at IS NULL THEN p.accepted_at END, p.due0,
   p.due0 - interval '15 hours'),
  ('overdue', CASE WHEN p.held_at IS NULL THEN p.accepted_at END, p.due0,
   p.due0 + interval '9 hours'),
  ('rating_remind', p.delivered_at, p.delivered_at, p.delivered_at + interval '3 days'),
  ('rating_default', p.delivered_at, p.delivered_at, p.delivered_at + interval '7 days')
) AS r(kind, entered, basis, due)
WHERE r.entered <= $1::timestamptz AND r.due > $1::timestamptz
ORDER BY p.id
"""

# Messages: only for orders of the last 30 days, the ones a person still scrolls back to:
# the agent's 新的代办任务, the resident's 受理 and 办结 notices. Read when older than a day.
NOTIFICATIONS = """
INSERT INTO notifications (dedupe_key, recipient_id, kind, order_id, title, body, data,
  created_at, read_at, wechat_status, attempts, sent_at)
SELECT n.kind || ':' || p.id || ':' || n.who, n.who, n.kind, p.id, n.title,
  n.title || ',办件号' || p.number,
  json_build_object('number', p.number, 'title', n.title), n.at,
  CASE WHEN n.at < $1::timestamptz - interval '1 day' THEN n.at + interval '3 hours' END,
  'sent', 1, n.at
FROM plan p CROSS JOIN LATERAL (VALUES
  ('assigned', p.agent_id, '新的代办任务', p.assigned_at),
  ('accepted', p.resident_id, '办件已受理', p.accepted_at),
  ('completed', p.resident_id, '办件已办结', p.completed_at)
) AS n(kind, who, title, at)
WHERE p.sub >= $1::timestamptz - interval '30 days' AND n.at <= $1::timestamptz
ORDER BY p.id
"""

# Before the load: each day's numbers go on after those already taken (the template order's,
# taken through the service: on PostgreSQL from the sequence, with no counter row).
TAKEN_NUMBERS = """
INSERT INTO order_number_counters (day, last)
SELECT to_date(substr(number, 3, 8), 'YYYYMMDD'), max(substr(number, 11)::int) FROM orders
GROUP BY 1
ON CONFLICT (day) DO UPDATE SET last = greatest(order_number_counters.last, excluded.last)
"""
# After it: a day the service had begun from the sequence (today's, the template order's)
# loses its base, so that its next submission starts the day again after the counter's last
# number, as after an upgrade during the day (app/orders/submission.py, START_DAY).
RESTART_DAYS = """
DELETE FROM order_number_days d USING order_number_counters c WHERE c.day = d.day
"""

COUNTERS = """
INSERT INTO order_number_counters (day, last)
SELECT day, count(*) + coalesce(max(c.last), 0) FROM plan
LEFT JOIN order_number_counters c USING (day) GROUP BY day
ON CONFLICT (day) DO UPDATE SET last = excluded.last
"""


def day_weight(day: date, first: date, last: date) -> float:
    """Submissions on a day, relatively: more on working days, fewer on holidays and at
    the Spring Festival, more in the insurance months (Sep-Dec), and growing from 0.7 to
    1.3 over the three years as the mini-program spreads."""
    weight = 1.0 if is_workday(day) else 0.45
    if is_holiday(day) and day.weekday() < 5:
        weight = 0.3
    weight *= {2: 0.8, 9: 1.1, 10: 1.15, 11: 1.2, 12: 1.15}.get(day.month, 1.0)
    return weight * (0.7 + 0.6 * (day - first).days / max(1, (last - first).days))


HOURS = [0.02, 0.01, 0.01, 0.01, 0.02, 0.05, 0.2, 0.6, 1.4, 1.6, 1.5, 1.1]
HOURS += [0.7, 0.8, 1.3, 1.4, 1.2, 0.9, 0.6, 0.6, 0.5, 0.35, 0.15, 0.06]


def lows(weights: Sequence[float]) -> list[float]:
    """Lower bounds of each bucket's share of [0, 1), for width_bucket(random(), …)."""
    total, out, run = sum(weights), [], 0.0
    for w in weights:
        out.append(run / total)
        run += w
    return out


@dataclass
class Month:
    first: date
    days: int
    weights: list[float]


def months(now: datetime) -> list[Month]:
    zone = ZoneInfo(ZONE)
    last = now.astimezone(zone).date()
    first = last - timedelta(days=DAYS - 1)
    out: list[Month] = []
    day = first
    while day <= last:
        end = min((day.replace(day=28) + timedelta(days=4)).replace(day=1), last + timedelta(1))
        weights = [day_weight(day + timedelta(i), first, last) for i in range((end - day).days)]
        out.append(Month(day, (end - day).days, weights))
        day = end
    # Today only counts for the part of it that has passed (by the hours' weights).
    local = now.astimezone(zone)
    passed = sum(HOURS[: local.hour]) + HOURS[local.hour] * local.minute / 60
    out[-1].weights[-1] *= passed / sum(HOURS)
    return out


def item_arrays(items: list[Item], seed: int, template_uploads: list[int]) -> dict[str, Any]:
    """Per item (1-based in SQL): popularity by Zipf over a seeded order with the template's
    item first, the materials as an order holds them before and after 受理 (the template's
    photos), the material most often asked again, and whether departments' progress is
    tracked (上报件, 联办件)."""
    rng = random.Random(seed)
    order = list(range(len(items)))
    rng.shuffle(order)
    first = next(i for i, it in enumerate(items) if it.code == "RS-0001")
    order.remove(first)
    order.insert(0, first)
    popularity = [0.0] * len(items)
    for rank, i in enumerate(order, start=1):
        popularity[i] = 1 / rank**1.1

    def materials(item: Item, state: str) -> str:
        return json.dumps(
            {
                code: {
                    "uploads": [template_uploads[k % len(template_uploads)]],
                    "state": state,
                    "reason": None,
                    "since_notice": False,
                }
                for k, (code, _) in enumerate(item.required)
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    again = [it.required[min(1, len(it.required) - 1)] if it.required else ("", "") for it in items]
    return {
        "lows": lows(popularity),
        "ids": [it.id for it in items],
        "versions": [it.version_id for it in items],
        "days": [it.promised_days for it in items],
        "before": [materials(it, "submitted") for it in items],
        "after": [materials(it, "accepted") for it in items],
        "can_supplement": [bool(it.required) for it in items],
        "again_code": [json.dumps(c, ensure_ascii=False) for c, _ in again],
        "again_name": [json.dumps(n, ensure_ascii=False) for _, n in again],
        "tracked": ["y" if it.kind in ("escalated", "joint") else "" for it in items],
    }


async def write_orders(
    conn: Any,
    p: Province,
    now: datetime,
    first_id: int,
    template_id: int,
    seed: int,
    files_days: int,
    say: Callable[[str], None],
) -> dict[str, int]:
    """Every month's orders, timelines, ratings, reminders and messages; returns rows per
    table."""
    now = now.replace(microsecond=0)
    for statement in FUNCTIONS.split(";\n"):
        if statement.strip():
            await conn.execute(statement)
    await conn.execute(PLAN_TABLE)
    await conn.execute(f"SELECT setseed({(seed % 1000) / 1000})")
    uploads = json.loads(
        await conn.fetchval("SELECT materials::text FROM orders WHERE id = $1", template_id)
    )
    template_uploads = sorted({u for m in uploads.values() for u in m["uploads"]})
    arrays = item_arrays(p.items, seed, template_uploads)
    pool = await conn.fetchrow(
        "SELECT note, data::text FROM order_events WHERE order_id = $1 AND action = 'pool'",
        template_id,
    )
    reason = await conn.fetchval(
        """SELECT data::json -> 'missing' -> 0 ->> 'reason' FROM order_events
        WHERE order_id = $1 AND action = 'request_supplement'""",
        template_id,
    )
    all_months = months(now)
    total_weight = sum(sum(m.weights) for m in all_months)
    start = datetime.combine(all_months[0].first, datetime.min.time(), ZoneInfo(ZONE))
    counts = dict.fromkeys(("orders", "order_events", "ratings", "reminders", "notifications"), 0)
    next_id = first_id
    started = time.perf_counter()
    spent: dict[str, float] = dict.fromkeys(
        ("plan", "orders", "order_events", "ratings", "reminders", "notifications", "counters"), 0.0
    )  # seconds per statement, over the months

    async def timed(name: str, statement: str, *params: Any) -> str:
        began = time.perf_counter()
        tag: str = await conn.execute(statement, *params)
        spent[name] += time.perf_counter() - began
        return tag

    await conn.execute(TAKEN_NUMBERS)
    for month in all_months:
        await conn.execute("TRUNCATE plan")
        share = sum(month.weights) / total_weight
        first_moment = datetime.combine(month.first, datetime.min.time(), ZoneInfo(ZONE))
        async with conn.transaction():
            made = int(
                (
                    await timed(
                        "plan",
                        PLAN,
                        month.first,
                        lows(month.weights),
                        lows(HOURS),
                        arrays["lows"],
                        share,
                        arrays["days"],
                        int(now.timestamp()),
                        int(start.timestamp()),
                        arrays["can_supplement"],
                        next_id - 1,
                        int(first_moment.timestamp()),
                    )
                ).split()[-1]
            )
            if not made:
                continue
            await timed(
                "orders",
                ORDERS,
                now,
                arrays["ids"],
                arrays["versions"],
                arrays["before"],
                arrays["after"],
                arrays["tracked"],
                files_days,
            )
            events = await timed(
                "order_events",
                EVENTS,
                now,
                arrays["again_code"],
                arrays["again_name"],
                pool["note"],
                pool["data"],
                json.dumps(reason, ensure_ascii=False),
            )
            ratings = await timed("ratings", RATINGS, now, arrays["ids"], list(GOOD))
            reminders = await timed("reminders", REMINDERS, now)
            notes = await timed("notifications", NOTIFICATIONS, now)
            await timed("counters", COUNTERS)
        next_id += made
        counts["orders"] += made
        for table, tag in (
            ("order_events", events),
            ("ratings", ratings),
            ("reminders", reminders),
            ("notifications", notes),
        ):
            counts[table] += int(tag.split()[-1])
        elapsed = time.perf_counter() - started
        say(
            f"    {month.first:%Y-%m}: {made:>9,} orders, {int(events.split()[-1]):>10,} events"
            f"  (total {counts['orders']:,} in {elapsed:.0f} s, "
            f"{counts['orders'] / elapsed:,.0f} orders/s)"
        )
    await conn.execute(RESTART_DAYS)
    say("    seconds per statement: " + ", ".join(f"{k} {v:.1f}" for k, v in spent.items()))
    return counts


async def template_children(conn: Any, template_id: int) -> dict[str, list[int]]:
    """Before the load (while the tables are small): the ids of every row that refers to
    the template order, table by table, so that `renumber_template` finds them by key."""
    references = await conn.fetch(
        """SELECT c.conrelid::regclass::text AS tab, a.attname AS col
        FROM pg_constraint c JOIN pg_attribute a
          ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.confrelid = 'orders'::regclass"""
    )
    found = {}
    for r in references:
        ids = await conn.fetch(f"SELECT id FROM {r['tab']} WHERE {r['col']} = $1", template_id)
        found[f"{r['tab']}.{r['col']}"] = [row["id"] for row in ids]
    return found


async def renumber_template(conn: Any, template_id: int, children: dict[str, list[int]]) -> int:
    new_id = int(await conn.fetchval("SELECT max(id) + 1 FROM orders"))
    async with conn.transaction():
        await conn.execute("UPDATE orders SET id = $1 WHERE id = $2", new_id, template_id)
        for where, ids in children.items():
            table, column = where.split(".")
            if ids:
                await conn.execute(
                    f"UPDATE {table} SET {column} = $1 WHERE id = ANY($2::bigint[])", new_id, ids
                )
    return new_id


async def give_history(conn: Any, openid: str, count: int) -> int:
    """A demo resident's own history: orders of their village spread evenly over the three
    years become theirs (with their timeline steps, rating and messages) until they have
    `count`; returns how many they have."""
    resident, village = await conn.fetchrow(
        "SELECT id, region_id FROM accounts WHERE openid = $1", openid
    )
    have = await conn.fetchval("SELECT count(*) FROM orders WHERE resident_id = $1", resident)
    need = count - have
    if need <= 0:
        return int(have)
    rows = await conn.fetch(
        """SELECT id FROM (
            SELECT id, row_number() OVER (ORDER BY id DESC) - 1 AS n, count(*) OVER () AS total
            FROM orders WHERE village_id = $1 AND resident_id <> $2 AND channel = 'mini_program'
        ) o WHERE n % greatest(1, total / $3) = 0 ORDER BY id DESC LIMIT $3""",
        village,
        resident,
        need,
    )
    ids = [r["id"] for r in rows]
    async with conn.transaction():
        await conn.execute(
            "UPDATE orders SET resident_id = $1 WHERE id = ANY($2::bigint[])", resident, ids
        )
        await conn.execute(
            """UPDATE order_events SET actor_id = $1
            WHERE order_id = ANY($2::bigint[]) AND actor_role = 'resident'""",
            resident,
            ids,
        )
        await conn.execute(
            "UPDATE ratings SET resident_id = $1 WHERE order_id = ANY($2::bigint[])", resident, ids
        )
        await conn.execute(
            """UPDATE notifications SET recipient_id = $1
            WHERE order_id = ANY($2::bigint[]) AND kind IN ('accepted', 'completed')""",
            resident,
            ids,
        )
    return int(have) + len(ids)


async def set_sequences(conn: Any) -> None:
    """Each loaded table's id sequence past the ids written explicitly."""
    for table in (*BIG_TABLES, "regions"):
        sequence = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table)
        if sequence:
            await conn.execute(
                f"SELECT setval('{sequence}', (SELECT coalesce(max(id), 0) + 1 FROM {table}), "
                "false)"
            )


async def check_references(conn: Any) -> list[str]:
    """Every foreign key of the loaded tables holds (what the triggers skipped while
    loading would have checked): the rows whose reference is missing, by constraint."""
    keys = await conn.fetch(
        """SELECT c.conname, c.conrelid::regclass::text AS tab, a.attname AS col,
                  c.confrelid::regclass::text AS ref, b.attname AS refcol
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        JOIN pg_attribute b ON b.attrelid = c.confrelid AND b.attnum = c.confkey[1]
        WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY($1::text[])""",
        list(BIG_TABLES),
    )
    broken = []
    for k in keys:
        missing = await conn.fetchval(
            f"""SELECT count(*) FROM {k["tab"]} t WHERE t.{k["col"]} IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM {k["ref"]} r WHERE r.{k["refcol"]} = t.{k["col"]})"""
        )
        if missing:
            broken.append(f"{k['conname']}: {missing:,} rows")
    return broken


async def sizes(conn: Any) -> list[tuple[str, int, int, int]]:
    """Each big table: rows (estimated after ANALYZE), table and index bytes."""
    rows = await conn.fetch(
        """SELECT c.relname, c.reltuples::bigint AS rows,
                  pg_total_relation_size(c.oid) - pg_indexes_size(c.oid) AS heap,
                  pg_indexes_size(c.oid) AS indexes
        FROM pg_class c WHERE c.relname = ANY($1::text[]) AND c.relkind = 'r'
        ORDER BY pg_total_relation_size(c.oid) DESC""",
        list(SIZED_TABLES),
    )
    return [(r["relname"], r["rows"], r["heap"], r["indexes"]) for r in rows]


# What the load leaves per order at --scale 0.05 (tables and indexes, all tables: 2.89 GiB
# for 1,000,000 orders), and the write-ahead log meanwhile (max_wal_size, and more while a
# checkpoint catches up). The sorts of the index builds spill to temporary files while the
# space the later indexes take is still free (`create_indexes`).
BYTES_PER_ORDER = 3_100
WAL_BYTES = 3 * 2**30


async def space_needed(conn: Any, orders: int) -> tuple[int, int | None]:
    """Bytes the generation needs at its peak (less what the database holds now, which it
    drops), and the bytes free where PostgreSQL keeps its data (None when that is not on
    this machine)."""
    import shutil
    from pathlib import Path

    need = orders * BYTES_PER_ORDER + WAL_BYTES
    need -= int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    folder = Path(await conn.fetchval("SHOW data_directory"))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return need, None
    return need, free


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
