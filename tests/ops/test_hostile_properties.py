"""The class behind issue 14's client-triggered 500s, as properties (hypothesis, derandomized):
a string holding a NUL, an unpaired surrogate or non-ASCII digits, sent into every parameter and
every top-level body field of every REST operation in the OpenAPI document, and into every
parameter of every legacy action, is never a 5xx and a refusal changes nothing. NUL and
surrogates are refused by the guard itself (`invalid_text`: 400 in the head, 422 in the body) before the route
runs."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import MakeCustomer
from tests.legacy.helpers import snapshot
from tests.support import Customer

pytestmark = pytest.mark.usefixtures("fresh_throttle")


@pytest.fixture(autouse=True)
def short_streams(app, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """`GET /v1/events/stream` answers for up to 300 s, and the in-process client waits for the
    whole answer: an example whose hostile value the stream accepts (a storable `Last-Event-ID`,
    a query parameter it ignores) would hold the run that long. Here a stream lasts 1 s."""
    monkeypatch.setattr(app.state.settings, "events_stream_seconds", 1.0)


UNSTORABLE = ["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]
OTHER_DIGITS = ["\u0665\u0660\u0660", "\uff15\uff10\uff10", "\u00b2", "\u0966\u0967"]  # Arabic-Indic, full-width, ...
HOSTILE = st.tuples(st.text(max_size=6), st.sampled_from(UNSTORABLE + OTHER_DIGITS), st.text(max_size=6)).map("".join)

# A plausible value for every required field, so that the hostile one is what gets judged.
PLAUSIBLE = {
    "email": "a@example.com",
    "quantity": 1000,
    "password": "correct horse battery",
    "new_password": "correct horse battery staple",
    "current_password": "correct horse battery",
    "order_id": "A7E17A3E",
    "prefix": "osk_abcdefgh",
    "session_id": 1,
    "network": "tron",
    "progress": 10,
    "delivered": 10,
}


def operations(document: dict[str, Any]) -> list[tuple[str, str, list[tuple[str, str]], list[str], dict[str, Any]]]:
    """(method, path, [(where, name)] parameters, body properties, required body) of each /v1 operation."""
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            params = [(p["in"], p["name"]) for p in operation.get("parameters", [])]
            body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            properties: list[str] = []
            required: dict[str, Any] = {}
            if body_schema is not None:
                schema = _resolve(document, body_schema)
                properties = list(schema.get("properties", {}))
                required = {name: PLAUSIBLE.get(name, "x") for name in schema.get("required", [])}
            found.append((method.upper(), path, params, properties, required))
    return found


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    for option in schema.get("anyOf", [schema]):  # `Model | None` bodies
        if "$ref" in option:
            resolved: dict[str, Any] = document["components"]["schemas"][option["$ref"].rsplit("/", 1)[1]]
            return resolved
    return schema


def _percent(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


async def state(maker: async_sessionmaker[AsyncSession], customer: Customer) -> tuple[object, ...]:
    async with maker() as session:
        keys = await session.scalar(
            sa.text("SELECT count(*) FROM api_keys WHERE account_id = :a"), {"a": customer.account_id}
        )
    return (*await snapshot(maker, customer), keys)


@pytest.fixture(scope="module")
def rest_operations(app) -> list[tuple[str, str, list[tuple[str, str]], list[str], dict[str, Any]]]:  # type: ignore[no-untyped-def]
    return operations(app.openapi())


@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    pick=st.integers(min_value=0, max_value=10_000), slot=st.integers(min_value=0, max_value=10_000), hostile=HOSTILE
)
async def test_every_rest_field_refuses_hostile_text_without_a_5xx(
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    sessionmaker: async_sessionmaker[AsyncSession],
    rest_operations,  # type: ignore[no-untyped-def]
    pick: int,
    slot: int,
    hostile: str,
) -> None:
    method, path, params, properties, required = rest_operations[pick % len(rest_operations)]
    slots = [*params, *(("body", name) for name in properties)]
    if not slots:
        slots = [("query", "anything")]  # an undeclared parameter goes through the guard all the same
    where, name = slots[slot % len(slots)]
    customer = await make_customer(balance="100")
    before = await state(sessionmaker, customer)

    headers: dict[str, str | bytes] = {"Authorization": f"Bearer {customer.api_key}"}
    url = path
    for p_where, p_name in params:
        if p_where == "path":
            value = hostile if (p_where, p_name) == (where, name) else str(PLAUSIBLE.get(p_name, "x"))
            url = url.replace("{" + p_name + "}", _percent(value))
    query = f"{_percent(name)}={_percent(hostile)}" if where == "query" else ""
    if where == "header":
        headers[name] = hostile.encode("utf-8", "surrogatepass")
    body: bytes | None = None
    if properties or required:
        fields = dict(required)
        if where == "body":
            fields[name] = hostile
        body = json.dumps(fields).encode()  # ASCII, with \\u escapes: the common vector
        headers["Content-Type"] = "application/json"

    response = await client.request(method, f"{url}?{query}" if query else url, content=body, headers=headers)
    label = f"{method} {path} {where}:{name}={hostile!r}"
    assert response.status_code < 500, f"{label}: {response.status_code} {response.text}"
    # Header values are bytes read as latin-1: only their NUL is unstorable text. A worker's
    # failure reason is stored cleaned, never refused (the report must not be lost).
    refused_by_the_guard = (where, method, path) != ("body", "POST", "/v1/fulfilment/orders/{order_id}/fail")
    if refused_by_the_guard and any(ch in hostile for ch in (["\x00"] if where == "header" else UNSTORABLE)):
        expected_status = 422 if where == "body" else 400  # the body's content, or a malformed head
        assert (response.status_code, response.json()["code"]) == (expected_status, "invalid_text"), label
    if response.status_code >= 400:
        assert await state(sessionmaker, customer) == before, f"{label}: a refusal changed the account"


LEGACY_FIELDS = {
    "balance": ["key"],
    "orders": ["key", "page", "per_page"],
    "payments": ["key", "page", "per_page"],
    "order": ["key", "email", "quantity", "request_id"],
    "status": ["key", "order", "orders"],
    "cancel": ["key", "order"],
}
LEGACY_PLAUSIBLE = {"email": "a@example.com", "quantity": 1000}


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    action=st.sampled_from(sorted(LEGACY_FIELDS)),
    slot=st.integers(min_value=0, max_value=10),
    hostile=HOSTILE,
    as_form=st.booleans(),
)
async def test_every_legacy_parameter_answers_hostile_text_in_the_contract(
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    sessionmaker: async_sessionmaker[AsyncSession],
    action: str,
    slot: int,
    hostile: str,
    as_form: bool,
) -> None:
    customer = await make_customer(balance="100")
    before = await snapshot(sessionmaker, customer)
    fields = LEGACY_FIELDS[action]
    name = fields[slot % len(fields)]
    params: dict[str, object] = {"action": action, "key": customer.api_key}
    if action == "order":
        params.update(LEGACY_PLAUSIBLE)
    if action in ("status", "cancel") and name == "key":
        params["order"] = "A7E17A3E"
    params[name] = hostile
    if as_form:
        body = "&".join(f"{_percent(k)}={_percent(str(v))}" for k, v in params.items()).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        body, headers = json.dumps(params).encode(), {"Content-Type": "application/json"}
    response = await client.post("/api", content=body, headers=headers)
    label = f"{action} {name}={hostile!r} form={as_form}"
    assert response.status_code == 200, label
    answer = json.loads(response.content.decode("utf-8"))  # strict UTF-8: no surrogate sent back either
    assert isinstance(answer, dict), label
    if name != "orders":  # several ids answer per id, each with its own error
        assert "error" in answer, f"{label}: {answer}"
    assert await snapshot(sessionmaker, customer) == before, label
