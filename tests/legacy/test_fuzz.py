"""Hostile input to the legacy endpoint (hypothesis, derandomized and bounded): random JSON and
random bytes, with and without a valid key. Every answer is HTTP 200 JSON, never a 5xx, and a
refusal changes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import MakeCustomer
from tests.legacy.helpers import snapshot

ACTIONS = st.sampled_from(["balance", "orders", "payments", "order", "status", "cancel", "nope", ""])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
# Bodies shaped like real requests, with hostile values in the fields that matter.
REQUESTS = st.fixed_dictionaries(
    {"action": st.one_of(ACTIONS, JSON)},
    optional={
        "email": st.one_of(st.emails(), JSON),
        "quantity": st.one_of(st.integers(min_value=-(10**6), max_value=10**6), JSON),
        "page": JSON,
        "per_page": JSON,
        "order": JSON,
        "orders": JSON,
        "request_id": JSON,
    },
)
BODIES = st.one_of(
    REQUESTS.map(lambda b: json.dumps(b).encode()),
    JSON.map(lambda b: json.dumps(b).encode()),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", ""]
)


def _unchanged_or_an_order(answer: dict[str, Any], before: tuple[str, int, int], after: tuple[str, int, int]) -> bool:
    if "error" in answer:
        return after == before
    return True  # an accepted request may change the account (an order, a cancel)


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES, content_type=CONTENT_TYPES, with_key=st.booleans())
async def test_any_body_gets_a_json_answer_and_a_refusal_changes_nothing(
    client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, body: bytes, content_type: str, with_key: bool
) -> None:
    customer = await make_customer(balance="100")
    before = await snapshot(sessionmaker, customer)
    url = f"/api?key={customer.api_key}" if with_key else "/api"
    response = await client.post(url, content=body, headers={"Content-Type": content_type} if content_type else {})
    assert response.status_code == 200
    answer = json.loads(response.content)
    assert isinstance(answer, dict)
    assert _unchanged_or_an_order(answer, before, await snapshot(sessionmaker, customer))
