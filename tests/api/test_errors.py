"""Every error is problem details with a stable code and a Chinese title; bad input changes
nothing."""

from __future__ import annotations


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


async def test_unknown_and_mistyped_fields_are_each_listed(client, demo):
    response = await client.post("/mp/v1/auth/login", json={"code": 5, "extra": 1, "more": "x"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_input" and _is_chinese(body["title"])
    assert response.headers["content-type"].startswith("application/problem+json")
    by_field = {e["field"]: e["message"] for e in body["errors"]}
    assert set(by_field) == {"code", "extra", "more"}
    assert by_field["code"] == "应为文字"
    assert by_field["extra"] == "不认识的字段"


async def test_missing_required_field_is_named(client, demo, login):
    response = await client.post(
        "/mp/v1/admin/staff", json={"role": "agent"}, headers=await login("admin")
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"name", "regionId"}


async def test_malformed_json_is_a_clear_error(client, demo):
    response = await client.post(
        "/mp/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert response.json()["code"] in ("invalid_input", "bad_request")
    assert _is_chinese(response.json()["title"])


async def test_body_over_the_limit_is_413(client, demo):
    response = await client.post("/mp/v1/auth/login", json={"code": "x" * 2_000_000})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_unknown_route_and_method_are_problems(client, demo):
    missing = await client.get("/mp/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    wrong = await client.delete("/mp/v1/regions")
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"


async def test_wrong_path_parameter_type_is_a_problem(client, demo):
    response = await client.get("/mp/v1/villages/abc/agents")
    assert response.status_code in (404, 422)
    assert "code" in response.json()


async def test_every_response_carries_a_request_id(client, demo):
    response = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    assert generated.headers["x-request-id"] != "bad id with spaces"
