"""An OpenAPI a client can be generated from: errors documented with one problem schema and
their codes, security only where a login is required, one operation per move, closed sets
as enums, a docs page that needs no internet, and no docs in production unless asked."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from app import errors
from app.asgi import create_app
from mini_program_api.openapi import codes_by_status
from tests.conftest import make_settings
from tests.factories import submit, taken_by_agent1a

PUBLIC = {
    ("post", "/mp/v1/auth/login"),
    ("post", "/mp/v1/auth/refresh"),
    ("post", "/mp/v1/auth/logout"),
    ("get", "/mp/v1/regions"),
    ("get", "/mp/v1/villages/{village_id}/agents"),
    ("get", "/mp/v1/catalogue/items"),
    ("get", "/mp/v1/catalogue/items/{code}"),
    ("get", "/mp/v1/catalogue/popular"),
    ("get", "/mp/v1/catalogue/departments"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}


@pytest.fixture
def spec(settings) -> dict[str, Any]:
    return create_app(settings).openapi_schema.to_schema()


def _operations(spec: dict[str, Any]):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield method, path, operation


def test_public_routes_carry_no_security_and_the_rest_require_a_bearer_token(spec):
    public = {(m, p) for m, p, op in _operations(spec) if not op.get("security")}
    assert public == PUBLIC
    for method, path, operation in _operations(spec):
        if (method, path) not in PUBLIC:
            assert operation["security"] == [{"BearerToken": []}], (method, path)
    assert "security" not in spec  # no blanket requirement over the public routes


def test_every_error_answer_is_the_one_problem_schema(spec):
    for method, path, operation in _operations(spec):
        errors_ = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        assert errors_, (method, path)
        for status, response in errors_.items():
            assert list(response["content"]) == ["application/problem+json"], (path, status)
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (path, status)
            assert "code:" in response["description"], (path, status)
    assert "status_code" not in str(spec)  # Litestar's own 400 shape, never sent, is gone


def test_the_problem_schema_names_every_code(spec):
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) >= {"type", "title", "status", "code"}
    codes = set(problem["properties"]["code"]["enum"])
    declared = set()
    pending = list(errors.DomainError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not errors.FileRejected:
            declared.add(cls.code)
    assert declared <= codes
    assert {"illegal_transition", "body_too_deep", "pdf_active_content", "too_many_requests"} <= (
        codes
    )
    assert codes_by_status()[401] and "token_revoked" in codes_by_status()[401]


def test_errors_listed_by_operation_match_what_it_can_do(spec):
    take = spec["paths"]["/mp/v1/agent/orders/{order_id}/take"]["post"]["responses"]
    assert {"401", "403", "404", "409", "422", "503"} <= set(take)
    submit_ = spec["paths"]["/mp/v1/orders"]["post"]["responses"]
    assert {"400", "413", "422", "429"} <= set(submit_)
    regions = spec["paths"]["/mp/v1/regions"]["get"]["responses"]
    assert "401" not in regions and "422" not in regions


def test_each_move_is_an_operation_of_its_own_with_its_own_body(spec):
    ids = {op.get("operationId"): (m, p) for m, p, op in _operations(spec)}
    for role, actions in {
        "resident": ["supplement", "resume", "confirm-receipt", "cancel"],
        "agent": [
            "take",
            "decline",
            "accept",
            "request-supplement",
            "reject",
            "hold",
            "resume",
            "supplement",
            "complete",
            "deliver",
            "terminate",
        ],
        "dispatcher": ["assign", "terminate"],
    }.items():
        for action in actions:
            name = role + "".join(part.title() for part in action.split("-"))
            assert name in ids, name
            assert ids[name][1].endswith(f"/{action}")
    assert not any("{action}" in path for path in spec["paths"])
    complete = spec["paths"]["/mp/v1/agent/orders/{order_id}/complete"]["post"]
    body = complete["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][body.rsplit("/", 1)[1]]
    assert schema["properties"]["outcome"]["enum"] == ["approved", "denied"]
    take = spec["paths"]["/mp/v1/agent/orders/{order_id}/take"]["post"]["requestBody"]
    assert take["required"] is False


def test_closed_sets_are_enums(spec):
    schemas = spec["components"]["schemas"]
    status = schemas["OrderSummary"]["properties"]["status"]
    assert "submitted" in status["enum"] and "closed" in status["enum"]
    assert schemas["UploadInput"]["properties"]["purpose"]["enum"]
    grade = spec["paths"]["/mp/v1/admin/ratings"]["get"]["parameters"]
    assert any(p["name"] == "grade" for p in grade)


def test_every_request_body_has_an_example_that_decodes(spec):
    from mini_program_api.examples import REQUEST_EXAMPLES

    bodies = {}
    for method, path, operation in _operations(spec):
        body = operation.get("requestBody")
        if body and "application/json" in body["content"]:
            media = body["content"]["application/json"]
            assert media.get("examples"), (method, path)
            schema = media["schema"]
            ref = next(s["$ref"] for s in [schema, *schema.get("oneOf", [])] if "$ref" in s)
            bodies[ref.rsplit("/", 1)[1]] = media["examples"]["example"]["value"]
    assert set(bodies) == set(REQUEST_EXAMPLES)
    types = _body_types()
    for name, example in REQUEST_EXAMPLES.items():
        msgspec.convert(example, types[name])  # raises if the example does not fit


def _body_types() -> dict[str, type]:
    import app.catalogue.document as document
    import mini_program_api.admin as admin
    import mini_program_api.catalogue as catalogue
    import mini_program_api.ledger as ledger
    import mini_program_api.orders as orders
    import mini_program_api.ratings as ratings
    import mini_program_api.schemas as schemas

    found: dict[str, type] = {}
    for module in (schemas, admin, catalogue, ledger, orders, ratings, document):
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, msgspec.Struct):
                found.setdefault(name, value)
    return found


async def test_a_move_that_needs_no_body_takes_an_empty_one(client, demo, login):
    order = (await submit(client, await login("resident1"))).json()
    agent = await taken_by_agent1a(client, login, order["id"])
    accepted = await client.post(f"/mp/v1/agent/orders/{order['id']}/accept", headers=agent)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"


def test_the_docs_page_needs_nothing_from_the_internet(settings):
    with TestClient(create_app(settings)) as client:
        page = client.get("/schema")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
        assert len(urls) >= 3
        for url in urls:
            assert url.startswith("/schema/assets/"), url
            assert client.get(url).status_code == 200, url
        assert "https://" not in page.text.split("<body>")[0]


def test_no_docs_in_production_unless_a_setting_asks(tmp_path, database_url, settings):
    off = make_settings(tmp_path / "off", database_url, DAIBAN_SERVER_API_DOCS="off")
    with TestClient(create_app(off)) as client:
        assert client.get("/schema/openapi.json").status_code == 404
        assert client.get("/schema").status_code == 404
    prod = msgspec.structs.replace(
        settings, core=msgspec.structs.replace(settings.core, env="prod")
    )
    assert not prod.serves_api_docs
    on = msgspec.structs.replace(prod, server=msgspec.structs.replace(prod.server, api_docs="on"))
    assert on.serves_api_docs


async def test_periods_outside_the_services_years_or_backwards_are_422(client, demo, login):
    admin = await login("admin")
    for query, field in (
        ({"from": "0001-01-01", "to": "0001-01-01"}, "from"),
        ({"from": "2026-11-01", "to": "9999-12-31"}, "to"),
        ({"from": "2026-11-30", "to": "2026-11-01"}, "to"),
    ):
        for path in ("/mp/v1/admin/satisfaction", "/mp/v1/admin/orders/export"):
            answer = await client.get(path, params=query, headers=admin)
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["errors"][0]["field"] == field


async def test_readiness_answers_ready_or_a_problem(client, demo):
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
