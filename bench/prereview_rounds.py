"""How many supplement rounds (补正) the pre-review's hints save, in simulated orders run
through the HTTP API with the real recogniser.

    .venv/bin/python bench/prereview_rounds.py [--orders 60] [--seed 7] [--level moderate]

Each order is resident1's 资格认证 (RS-0009: the ID card, front and back), photographed at a
degradation level of bench/prereview_set.py, with a mistake drawn for it: none (60 %), the
front photographed again in the back's place (15 %), an expired card's back (10 %), or
someone else's card's front (15 %). Run twice over the same draws:

- without pre-review: the resident uploads and submits; the agent (who sees the truth, as
  a careful agent would) asks for the material again in a 补正 notice when it is wrong;
- with it: the photos are declared (`document`), the job reads them, and a resident whose
  upload shows a warning takes that photo again (the right one) before submitting; the agent
  then decides as before.

It prints the supplement rounds in each run, the rounds saved, the retakes the hints caused
(needless ones: a warning on a photo that was right) and the photos read. The resident is
assumed to heed every hint; real residents will heed fewer.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the project: bench/jobs.py is not the jobs package
import prereview_set as drawn  # noqa: E402

from app.context import Context  # noqa: E402
from app.demo import demo_id_number  # noqa: E402
from jobs import tasks  # noqa: E402

RESIDENT1 = demo_id_number("370406", "19480312", "022")  # 张秀英
MISTAKES = (("none", 0.60), ("wrong_side", 0.15), ("expired", 0.10), ("someone_else", 0.15))

Login = Callable[[str], Awaitable[dict[str, str]]]


@dataclass
class Figures:
    orders: int = 0
    mistakes: dict[str, int] = field(default_factory=dict)
    rounds: int = 0  # 补正 notices the agents sent
    retakes: int = 0  # photos taken again on a hint
    needless_retakes: int = 0  # of which the photo had been right
    photos_read: int = 0
    seconds: float = 0.0


def draw(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    kinds, weights = zip(*MISTAKES, strict=True)
    return [rnd.choices(kinds, weights)[0] for _ in range(n)]


def _her(drawn: ModuleType, rnd: random.Random, *, expired: bool = False) -> Any:
    someone = drawn.make_person(rnd, expired=expired)
    someone.name, someone.sex, someone.birth = "张秀英", "女", date(1948, 3, 12)
    someone.id_number = RESIDENT1
    return someone


def photos(drawn: ModuleType, mistake: str, level: str, seed: int) -> dict[str, tuple[bytes, bool]]:
    """The front and back as first photographed (each with whether it is right), and the
    right ones for a retake."""
    rnd = random.Random(seed)
    her = _her(drawn, rnd)

    def shot(render: Any, who: Any) -> bytes:
        return bytes(drawn.photograph(render(who, rnd), level, rnd))

    right_front, right_back = shot(drawn.render_front, her), shot(drawn.render_back, her)
    front, back = (right_front, True), (right_back, True)
    if mistake == "wrong_side":
        back = (shot(drawn.render_front, her), False)
    elif mistake == "expired":
        back = (shot(drawn.render_back, _her(drawn, rnd, expired=True)), False)
    elif mistake == "someone_else":
        front = (shot(drawn.render_front, drawn.make_person(rnd)), False)
    return {
        "id_card_front": front,
        "id_card_back": back,
        "retake_front": (right_front, True),
        "retake_back": (right_back, True),
    }


async def _upload(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, document: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"purpose": "material", "contentType": "image/jpeg", "size": len(data)}
    if document:
        body["document"] = document
    ticket = (await client.post("/mp/v1/uploads", json=body, headers=headers)).json()
    files = {ticket["fileField"]: ("photo.jpg", data, "image/jpeg")}
    posted = await client.post(ticket["url"], data=ticket["fields"], files=files)
    assert posted.status_code == 204, posted.text
    done = await client.post(f"/mp/v1/uploads/{ticket['id']}/complete", headers=headers)
    assert done.status_code == 200, done.text
    return dict(done.json())


def _warned(view: dict[str, Any]) -> bool:
    shown = view.get("prereview") or {}
    return any(f["severity"] == "warning" for f in shown.get("findings", []))


async def simulate(
    client: httpx.AsyncClient,
    login: Login,
    ctx: Context,
    mistakes: list[str],
    *,
    with_prereview: bool,
    level: str = "moderate",
    seed: int = 7,
) -> Figures:
    figures = Figures(orders=len(mistakes))
    resident, dispatcher, agent = (
        await login("resident1"),
        await login("dispatcher1a"),
        await login("agent1a"),
    )
    agents = (await client.get("/mp/v1/dispatch/agents", headers=dispatcher)).json()
    liu = next(a["id"] for a in agents if a["name"] == "刘桂兰")
    started = time.perf_counter()
    for n, mistake in enumerate(mistakes):
        figures.mistakes[mistake] = figures.mistakes.get(mistake, 0) + 1
        shots = photos(drawn, mistake, level, seed * 10_000 + n)
        ids, right = [], True
        for side in ("id_card_front", "id_card_back"):
            data, ok = shots[side]
            view = await _upload(client, resident, data, side if with_prereview else None)
            if with_prereview:
                await tasks.prereviews.read_queued(ctx)
                figures.photos_read += 1
                view = (await client.get(f"/mp/v1/uploads/{view['id']}", headers=resident)).json()
                if _warned(view):  # the resident heeds the hint and takes it again
                    figures.retakes += 1
                    figures.needless_retakes += ok
                    retake = shots["retake_" + side.split("_")[-1]][0]
                    view = await _upload(client, resident, retake, side)
                    await tasks.prereviews.read_queued(ctx)
                    figures.photos_read += 1
                    ok = True
            ids.append(view["id"])
            right = right and ok
        made = await client.post(
            "/mp/v1/orders",
            json={"itemCode": "RS-0009", "materials": {"id_card": ids}},
            headers={**resident, "Idempotency-Key": f"sim-{uuid.uuid4().hex}"},
        )
        assert made.status_code == 201, made.text
        order = made.json()["id"]
        for path, body, headers in (
            (f"/mp/v1/dispatch/orders/{order}/assign", {"agentId": liu}, dispatcher),
            (f"/mp/v1/agent/orders/{order}/take", {}, agent),
        ):
            moved = await client.post(path, json=body, headers=headers)
            assert moved.status_code == 200, moved.text
        if right:
            moved = await client.post(f"/mp/v1/agent/orders/{order}/accept", json={}, headers=agent)
        else:
            notice = {"missing": [{"code": "id_card", "reason": "身份证照片不符合要求，请重拍"}]}
            moved = await client.post(
                f"/mp/v1/agent/orders/{order}/request-supplement", json=notice, headers=agent
            )
            figures.rounds += 1
        assert moved.status_code == 200, moved.text
    figures.seconds = time.perf_counter() - started
    return figures


async def _run(orders: int, seed: int, level: str) -> tuple[Figures, Figures]:
    from app.asgi import create_app
    from app.demo import seed_demo
    from app.migrate import upgrade
    from app.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        figures = []
        for with_prereview in (False, True):
            var = Path(tmp) / ("with" if with_prereview else "without")
            settings = load_settings(
                {
                    "DAIBAN_VAR_DIR": str(var),
                    "DAIBAN_STORAGE_PUBLIC_URL": "http://testserver",
                    "DAIBAN_LIMITS_ORDERS_PER_ACCOUNT": "0",
                    "DAIBAN_LIMITS_UPLOADS_PER_ACCOUNT": "0",
                    "DAIBAN_LIMITS_LOGIN_PER_ADDRESS": "0",
                    "DAIBAN_LIMITS_LOGIN_PER_ACCOUNT": "0",
                    "DAIBAN_LOG_LEVEL": "WARNING",
                }
            )
            ctx = Context.build(settings)
            try:
                await upgrade(ctx.db)
                await ctx.store.ensure_ready()
                await ctx.db.run_write(lambda s: seed_demo(s, ctx))  # noqa: B023
                app = create_app(settings, ctx=ctx)
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://testserver"
                ) as client:

                    async def login(
                        handle: str, client: httpx.AsyncClient = client
                    ) -> dict[str, str]:
                        answer = await client.post(
                            "/mp/v1/auth/login", json={"code": f"dev:{handle}"}
                        )
                        return {"Authorization": f"Bearer {answer.json()['accessToken']}"}

                    figures.append(
                        await simulate(
                            client,
                            login,
                            ctx,
                            draw(orders, seed),
                            with_prereview=with_prereview,
                            level=level,
                            seed=seed,
                        )
                    )
            finally:
                await ctx.aclose()
        return figures[0], figures[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--level", default="moderate", choices=("none", "moderate", "heavy"))
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the requests' own log lines
    without, with_ = asyncio.run(_run(args.orders, args.seed, args.level))
    wrong = without.orders - without.mistakes.get("none", 0)
    print(f"{args.orders} orders at level {args.level}, seed {args.seed}: {without.mistakes}")
    print("| | without pre-review | with pre-review |")
    print("| --- | --- | --- |")
    print(f"| orders with a wrong photo at first | {wrong} | {wrong} |")
    print(f"| supplement rounds (补正) | {without.rounds} | {with_.rounds} |")
    print(
        f"| photos retaken on a hint (needless) | — | {with_.retakes} ({with_.needless_retakes}) |"
    )
    print(f"| photos read | — | {with_.photos_read} |")
    print(f"| seconds for the run | {without.seconds:.1f} | {with_.seconds:.1f} |")
    saved = without.rounds - with_.rounds
    share = f"{saved / without.rounds:.0%}" if without.rounds else "—"
    print(f"rounds saved: {saved} of {without.rounds} ({share})")


if __name__ == "__main__":
    main()
