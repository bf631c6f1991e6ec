"""A bounded property-based fuzz of the whole API with schemathesis, one role at a time.

The schema is the app's own `/schema/openapi.json`. Each role fuzzes the operations of its
URL prefix with its own Bearer token against the demo data; every operation of the schema
belongs to exactly one role, so a new route cannot slip past unfuzzed.

Four passes per operation, all deterministic: Hypothesis with schema-valid data and with
schema-invalid data (derandomized, no example database, no shrinking), schemathesis's
coverage phase (schema-valid boundary values: maximum ids, longest strings, each optional
parameter alone), and schema-valid data with the path parameters set to things that exist
(resident1's order taken by agent1a, its photo, a complaint, demo staff, a village, an item,
the year), so success responses are checked too and not only 404s.

The app runs in the test's event loop over httpx's ASGITransport (as conftest's `serve`), so
the context, its database engine and its locks stay on the loop that made them (this also
holds on PostgreSQL). Hypothesis cannot run inside a coroutine, so it runs in a worker
thread and hands each request to the loop.

Every response goes through four schemathesis checks: not_a_server_error,
status_code_conformance, content_type_conformance and response_schema_conformance. A
failure is recorded, not raised, so one run sees every operation (and nothing is shrunk);
the test then fails with the deduplicated list, each with a curl line that reproduces it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import textwrap
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Config, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.openapi import from_dict
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.asgi import create_app
from tests.factories import agent_id, submit, taken_by_agent1a, upload_photo

BASE_URL = "http://testserver"
# Hypothesis examples per operation (known-ids: per set of path values). 25 valid ones are
# what it takes to reach the date bounds (0001-01-01, 9999-12-31); the module takes about a
# minute on two cores. FUZZ_SCALE=5 multiplies them for a deeper run by hand.
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
EXAMPLES = {
    name: count * SCALE for name, count in {"positive": 25, "negative": 5, "known-ids": 3}.items()
}
CHECKS: dict[str, Callable[..., Any]] = {
    "not_a_server_error": not_a_server_error,
    "status_code_conformance": status_code_conformance,
    "content_type_conformance": content_type_conformance,
    "response_schema_conformance": response_schema_conformance,
}

# role -> (demo handle or None for no token, the paths it fuzzes)
ROLES: dict[str, tuple[str | None, str]] = {
    "anonymous": (None, r"^/(healthz|readyz)$|^/mp/v1/(auth|catalogue|regions|villages)(/|$)"),
    "resident": ("resident1", r"^/mp/v1/(orders|me|uploads|complaints)(/|$)"),
    "agent": ("agent1a", r"^/mp/v1/agent(/|$)"),
    "dispatcher": ("dispatcher1a", r"^/mp/v1/dispatch(/|$)"),
    "admin": ("admin", r"^/mp/v1/admin(/|$)"),
}

# Redeeming a binding code turns the caller's resident login into a staff account and
# disables that resident, so each call gets a throwaway resident of its own (a fresh login
# per call) rather than a role's token; anonymously it would never pass the login guard.
FRESH_RESIDENT_PER_CALL = {("POST", "/mp/v1/auth/bind-staff")}

EXCLUDED: dict[tuple[str, str], str] = {}  # (method, path) -> why; nothing needs it so far


@dataclass
class Found:
    operation: str
    check: str
    cause: str
    curl: str
    passes: set[str]
    count: int = 1


@dataclass
class Session:
    """A role's token, renewed when the API answers 401 to it and repaired after a change to
    the caller's own account (a reissued binding code unbinds the admin's own WeChat)."""

    client: httpx.AsyncClient
    handle: str | None
    headers: dict[str, str] = field(default_factory=dict)
    account_id: int | None = None
    fresh_logins: int = 0
    relogins: int = 0
    rebinds: int = 0

    async def login(self, handle: str) -> dict[str, Any]:
        response = await self.client.post("/mp/v1/auth/login", json={"code": f"dev:{handle}"})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def start(self) -> None:
        if self.handle is None:
            return
        pair = await self.login(self.handle)
        self.headers = {"Authorization": f"Bearer {pair['accessToken']}"}
        self.account_id = pair["account"]["id"]

    async def throwaway_resident(self) -> dict[str, str]:
        self.fresh_logins += 1
        pair = await self.login(f"fuzz-bind-{self.fresh_logins}")
        return {"Authorization": f"Bearer {pair['accessToken']}"}

    async def after(self, response: httpx.Response) -> None:
        """A new binding code for the caller's own account (should the API allow it) clears
        its WeChat login: redeem it from a fresh `dev:<handle>` login, as on a new phone."""
        if self.handle is None or response.status_code != 200:
            return
        try:
            body = response.json()
        except ValueError:
            return
        if not isinstance(body, dict) or "bindingCode" not in body:
            return
        if (body.get("staff") or {}).get("id") != self.account_id:
            return
        resident = await self.login(self.handle)  # the unbound WeChat logs in as a resident
        bound = await self.client.post(
            "/mp/v1/auth/bind-staff",
            json={"code": body["bindingCode"]},
            headers={"Authorization": f"Bearer {resident['accessToken']}"},
        )
        assert bound.status_code == 200, bound.text
        self.rebinds += 1
        self.headers = {"Authorization": f"Bearer {bound.json()['accessToken']}"}


async def known_path_values(client: httpx.AsyncClient, role: str) -> dict[str, list[Any]]:
    """Things that exist, by path parameter name: resident1's order, taken by agent1a, with
    a photo; resident1's complaint about agent1a; demo staff (the admin's own id included,
    the case that needs Session.after); agent1a's village; an item; this year."""

    async def login(handle: str) -> dict[str, str]:
        response = await client.post("/mp/v1/auth/login", json={"code": f"dev:{handle}"})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['accessToken']}"}

    resident, dispatcher = await login("resident1"), await login("dispatcher1a")
    photo = await upload_photo(client, resident)
    order = await submit(client, resident, "RS-0001", key=f"fuzz-{uuid.uuid4().hex}")
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    await taken_by_agent1a(client, login, order_id)
    agent1a = await agent_id(client, dispatcher, "刘桂兰")
    complaint = await client.post(
        "/mp/v1/complaints", json={"agentId": agent1a, "text": "电话打不通"}, headers=resident
    )
    assert complaint.status_code == 201, complaint.text
    me = await client.get("/mp/v1/me", headers=await login("agent1a"))
    admin = await client.get("/mp/v1/me", headers=await login("admin"))
    return {
        "order_id": [order_id],
        "upload_id": [photo],
        "complaint_id": [complaint.json()["id"]],
        "agent_id": [agent1a],
        "staff_id": [admin.json()["id"], agent1a],
        "village_id": [me.json()["region"]["id"]],
        "code": ["RS-0001"],
        "year": [2026],
    }


def to_httpx(kwargs: dict[str, Any]) -> dict[str, Any]:
    """schemathesis serialises a case for `requests`; the same request for httpx."""
    out: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": dict(kwargs.get("headers") or {}),
    }
    if kwargs.get("params") is not None:
        out["params"] = kwargs["params"]
    if kwargs.get("cookies"):
        out["cookies"] = kwargs["cookies"]
    if "json" in kwargs:
        out["content"] = json.dumps(kwargs["json"]).encode()  # as `requests` would send it
        out["headers"].setdefault("Content-Type", "application/json")
    elif kwargs.get("files"):
        out["files"] = kwargs["files"]
        if isinstance(kwargs.get("data"), dict):
            out["data"] = kwargs["data"]
    elif isinstance(kwargs.get("data"), dict):
        out["data"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        out["content"] = data.encode() if isinstance(data, str) else data
    return out


def one_line(text: str, width: int = 220) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@pytest.mark.parametrize("role", list(ROLES))
async def test_api_conforms_to_its_openapi_under_fuzzing(role, settings, ctx, demo):
    handle, path_pattern = ROLES[role]
    app = create_app(settings, ctx=ctx)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        raw = (await client.get("/schema/openapi.json")).json()
        everything = {
            (method.upper(), path)
            for path, item in raw["paths"].items()
            for method in item
            if method in {"get", "put", "post", "patch", "delete"}
        }
        owners = {
            op: [name for name, (_, pattern) in ROLES.items() if re.search(pattern, op[1])]
            for op in everything
        }
        assert all(len(names) == 1 for names in owners.values()), {
            op: names for op, names in owners.items() if len(names) != 1
        }

        known = await known_path_values(client, role)
        session = Session(client, handle)
        await session.start()
        # Unsanitised, so the curl lines in the report reproduce the request as sent.
        config = Config.from_dict({"output": {"sanitization": {"enabled": False}}})
        schema = from_dict(raw, config=config)
        loop = asyncio.get_running_loop()
        found: dict[tuple[str, ...], Found] = {}
        fuzzed: list[str] = []
        requests = 0

        async def send(method: str, path: str, request: dict[str, Any]) -> httpx.Response:
            if (method, path) in FRESH_RESIDENT_PER_CALL:
                auth = await session.throwaway_resident()
            else:
                auth = session.headers
            request["headers"].update(auth)
            response = await client.request(**request)
            if response.status_code == 401 and auth and auth is session.headers:
                # The role's token stopped working: log in again and send once more.
                session.relogins += 1
                await session.start()
                request["headers"].update(session.headers)
                response = await client.request(**request)
            await session.after(response)
            return response

        def record(
            case: Any, response: httpx.Response, check: str, failure: Failure, pass_: str
        ) -> None:
            status = str(response.status_code)
            key = (case.operation.label, check, type(failure).__name__, failure.title, status)
            headers = {
                k: v
                for k, v in response.request.headers.items()
                if k.lower() in {"authorization", "content-type", "idempotency-key"}
            }
            curl = case.as_curl_command(headers=headers, base_url=BASE_URL)
            cause = f"{status}: {one_line(failure.title + ' — ' + failure.message)}"
            previous = found.get(key)
            if previous is None:
                found[key] = Found(case.operation.label, check, cause, curl, {pass_})
            else:
                previous.count += 1
                previous.passes.add(pass_)
                if len(curl) < len(previous.curl):
                    previous.curl, previous.cause = curl, cause

        def run_cases(operation: Any, strategy: Any, examples: int, pass_: str) -> None:
            method, path = operation.method.upper(), operation.path

            @hypothesis_settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                check_case(case, method, path, pass_)

            try:
                run()
            except Unsatisfiable:
                # Nothing of this operation can be made invalid (no parameters, no body).
                assert pass_ == GenerationMode.NEGATIVE.value, (method, path)

        def check_case(case: Any, method: str, path: str, pass_: str) -> None:
            nonlocal requests
            requests += 1
            request = to_httpx(case.as_transport_kwargs(base_url=BASE_URL))
            response = asyncio.run_coroutine_threadsafe(send(method, path, request), loop).result(
                timeout=60
            )
            for name, check in CHECKS.items():
                try:
                    case.validate_response(response, checks=[check])
                except FailureGroup as group:
                    for failure in group.exceptions:
                        record(case, response, name, failure, pass_)
                except Failure as failure:
                    record(case, response, name, failure, pass_)

        def fuzz(operation: Any) -> None:
            method, path = operation.method.upper(), operation.path
            if (method, path) in EXCLUDED:
                return
            fuzzed.append(f"{method} {path}")
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = operation.as_strategy(generation_mode=mode)
                run_cases(operation, strategy, EXAMPLES[mode.value], mode.value)
            # The cases `schemathesis run` makes in its coverage phase; schema-valid only, as
            # the invalid ones are some 3,600 requests, too many for this module's budget.
            generation = schema.config.generation_for(operation=operation, phase="coverage")
            for case in schema.iter_coverage_cases(
                operation,
                generation_modes=[GenerationMode.POSITIVE],
                generation_config=generation,
                extra_data_source=None,
                error_feedback=None,
                session=None,
            ):
                check_case(case, method, path, "coverage")
            names = [n for n in re.findall(r"{(\w+)}", path) if known.get(n)]
            for values in itertools.product(*(known[n] for n in names)) if names else []:
                strategy = operation.as_strategy(
                    path_parameters=dict(zip(names, values, strict=True))
                )
                run_cases(operation, strategy, EXAMPLES["known-ids"], "known-ids")

        operations = [
            result.ok() for result in schema.include(path_regex=path_pattern).get_all_operations()
        ]
        assert operations, f"no operation for {role}"
        await asyncio.to_thread(lambda: [fuzz(op) for op in operations])

        # The database is still usable: the role logs in as itself and is answered.
        if handle is not None:
            pair = await session.login(handle)
            assert pair["account"]["id"] == session.account_id, pair["account"]
            me = await client.get(
                "/mp/v1/me", headers={"Authorization": f"Bearer {pair['accessToken']}"}
            )
            assert me.status_code == 200 and me.json()["role"] == pair["account"]["role"]

    print(
        f"\n{role}: {len(fuzzed)} operations, {requests} requests; {session.relogins} "
        f"re-logins after 401, {session.fresh_logins} fresh logins, {session.rebinds} "
        "re-bindings of the caller's own account"
    )
    if found:
        lines = [f"{len(found)} distinct failures for {role}:"]
        for item in sorted(found.values(), key=lambda f: (f.check, f.operation, f.cause)):
            passes = "+".join(sorted(item.passes))
            lines.append(
                f"- [{item.check}] {item.operation} (x{item.count}, {passes}): {item.cause}"
            )
            lines.append(textwrap.indent(item.curl, "    "))
        pytest.fail("\n".join(lines), pytrace=False)
