"""/metrics: requests by route template, method and status with latencies, and the
service's state from the database; only for a bearer of the metrics token, 404 otherwise,
and no /metrics at all without one."""

from __future__ import annotations

import re

from app.asgi import create_app
from app.context import Context
from tests.conftest import make_settings, serve
from tests.factories import submit

TOKEN = "metrics-token-of-at-least-thirty-two-chars"


def _value(text: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert found, sample
    return float(found.group(1))


async def test_metrics_count_routes_and_show_the_state_only_to_the_token(
    ctx, demo, client, database_url, tmp_path
):
    assert (await client.get("/metrics")).status_code == 404  # no token set: no /metrics

    settings = make_settings(tmp_path / "m", database_url, DAIBAN_SERVER_METRICS_TOKEN=TOKEN)
    watched = Context.build(settings)
    watched.now = ctx.now
    try:
        async with serve(create_app(settings, ctx=watched)) as app:
            login = await app.post("/mp/v1/auth/login", json={"code": "dev:resident2"})
            headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
            assert (await submit(app, headers)).status_code == 201
            order = (await app.get("/mp/v1/orders", headers=headers)).json()["items"][0]
            assert (
                await app.get(f"/mp/v1/orders/{order['id']}", headers=headers)
            ).status_code == 200

            for wrong in ({}, {"Authorization": "Bearer nope"}, headers):
                hidden = await app.get("/metrics", headers=wrong)
                assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
            scraped = await app.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        await watched.aclose()
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    # Route templates, not raw paths: one series per route, whatever the ids.
    assert 'path="/mp/v1/orders/{order_id}"' in text and f'/mp/v1/orders/{order["id"]}"' not in text
    detail = (
        'daiban_requests_total{app_name="daiban",method="GET",'
        'path="/mp/v1/orders/{order_id}",status_code="200"}'
    )
    assert _value(text, detail) >= 1
    assert "daiban_request_duration_seconds_bucket" in text
    assert _value(text, f'daiban_orders{{status="{order["status"]}"}}') >= 1
    assert _value(text, "daiban_reminders_due") >= 0
    assert "daiban_outbox_waiting" in text and "daiban_orders_overdue 0.0" in text
    assert "daiban_backup_age_seconds NaN" in text  # no backup yet
