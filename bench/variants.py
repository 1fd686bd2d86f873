"""What the bench sends: the order variants real traffic takes, and the reads, as raw requests,
with the test of each answer ("an order was placed", "the page was served")."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

import httpload
from seeding import RECIPIENT, Seeded, asked_address

QUANTITY = 500  # 0.5 USD

Api = Literal["legacy", "rest", "panel", "batch"]
APIS: tuple[Api, ...] = ("legacy", "rest")  # every variant's rows
# `panel`: the panel API v2's `add` (a form post to /api/v2); `batch`: POST /v1/orders/batch with
# 100 lines of the variant per request (a batch Idempotency-Key for the idempotent variants).
BATCH_LINES = 100


@dataclass(frozen=True)
class Variant:
    id: str
    title: str
    recipient: Literal["confirmed", "asked", "new"]
    idempotent: bool  # a unique `request_id` (legacy) or `Idempotency-Key` (REST) on every order
    hot: bool  # every connection on one account instead of 1,000
    spread_twin: str | None = None  # a hot variant: the same variant on spread accounts
    more_apis: tuple[Api, ...] = ()  # rows beyond legacy and REST


def apis_of(variant: Variant) -> tuple[Api, ...]:
    return (*APIS, *variant.more_apis)


def orders_per_request(api: Api) -> int:
    return BATCH_LINES if api == "batch" else 1


VARIANTS = (
    Variant("confirmed", "recipient confirmed, no idempotency key", "confirmed", False, False),
    Variant("hot", "one hot account, recipient confirmed", "confirmed", False, True, "confirmed"),
    Variant("asked", "recipient asked, not yet confirmed", "asked", False, False),
    Variant("new", "a new recipient on every order", "new", False, False, more_apis=("panel", "batch")),
    Variant("key", "with an idempotency key, recipient confirmed", "confirmed", True, False),
    Variant("key-new", "an idempotency key and a new recipient", "new", True, False, more_apis=("panel", "batch")),
    Variant("hot-key-new", "one hot account, an idempotency key and a new recipient", "new", True, True, "key-new"),
)
ONE_CLIENT = Variant("1client", "one client, recipient confirmed, no idempotency key", "confirmed", False, False)


def order_request(api: Api, key: str, email: str, request_id: str | None) -> bytes:
    if api == "panel":
        fields = {"key": key, "action": "add", "service": "1", "link": email, "quantity": str(QUANTITY)}
        if request_id is not None:
            fields["request_id"] = request_id
        form = urlencode(fields, safe="@").encode()  # the placeholders stay as they are
        return httpload.request("POST", "/api/v2", body=form, content_type="application/x-www-form-urlencoded")
    if api == "legacy":
        body = {"action": "order", "key": key, "email": email, "quantity": QUANTITY}
        if request_id is not None:
            body["request_id"] = request_id
        return httpload.request("POST", "/api", body=json.dumps(body, separators=(",", ":")).encode())
    headers = {"Authorization": f"Bearer {key}"}
    if request_id is not None:
        headers["Idempotency-Key"] = request_id
    rest_body = json.dumps({"email": email, "quantity": QUANTITY}, separators=(",", ":")).encode()
    return httpload.request("POST", "/v1/orders", body=rest_body, headers=headers)


def order_requests(api: Api, variant: Variant, seeded: Seeded, tag: str) -> Callable[[int], bytes]:
    """make_request(n) for the variant; `tag` makes new addresses and keys unique to the run."""
    accounts = (
        [(seeded.hot_key, seeded.hot_id)]
        if variant.hot
        else list(zip(seeded.spread_keys, seeded.spread_ids, strict=True))
    )
    if api == "batch":
        return batch_requests(variant, accounts, tag)
    if variant.recipient == "confirmed" and not variant.idempotent:
        fixed = [order_request(api, key, RECIPIENT, None) for key, _ in accounts]  # built once: a cheap generator
        return lambda n: fixed[n % len(fixed)]

    # Built from each account's request with placeholders (a few byte replacements per request, not
    # a JSON encoding): on 2 shared cores the load generator's CPU is taken from the service's.
    email_slot, key_slot = "@EMAIL@", "@KEY@"
    fills = []
    for key, account_id in accounts:
        email = {"confirmed": RECIPIENT, "asked": asked_address(account_id)}.get(variant.recipient, email_slot)
        prepared = order_request(api, key, email, key_slot if variant.idempotent else None)
        fills.append(httpload.template(prepared, email_slot.encode(), key_slot.encode()))
    new_recipient = variant.recipient == "new"

    def make(n: int) -> bytes:
        email = b"new-%s-%d@example.com" % (tag.encode(), n) if new_recipient else b""
        return fills[n % len(fills)](email, b"%s-%d" % (tag.encode(), n))

    return make


def batch_requests(variant: Variant, accounts: list[tuple[str, int]], tag: str) -> Callable[[int], bytes]:
    """Request n: 100 lines of the variant from account n mod 1,000 (line i to
    `new-<tag>-<n>-<i>@example.com` for a new recipient)."""

    def make(n: int) -> bytes:
        key, account_id = accounts[n % len(accounts)]
        if variant.recipient == "new":
            emails = [f"new-{tag}-{n}-{i}@example.com" for i in range(BATCH_LINES)]
        else:
            emails = [RECIPIENT if variant.recipient == "confirmed" else asked_address(account_id)] * BATCH_LINES
        body = json.dumps({"orders": [{"email": e, "quantity": QUANTITY} for e in emails]}, separators=(",", ":"))
        headers = {"Authorization": f"Bearer {key}"}
        if variant.idempotent:
            headers["Idempotency-Key"] = f"{tag}-{n}"
        return httpload.request("POST", "/v1/orders/batch", body=body.encode(), headers=headers)

    return make


def always(request: bytes) -> Callable[[int], bytes]:
    """make_request for a run that sends the same request every time."""
    return lambda n: request


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def order_placed(api: Api) -> Callable[[int, bytes], bool]:
    """A placed order, read from the body: a legacy or panel refusal is HTTP 200 with
    `{"error": ...}`; a batch counts when every one of its lines has an order."""
    if api == "panel":

        def panel(status: int, body: bytes) -> bool:
            answer = _json(body)
            return status == 200 and isinstance(answer, dict) and type(answer.get("order")) is int

        return panel
    if api == "batch":

        def batch(status: int, body: bytes) -> bool:
            answer = _json(body)
            return status == 200 and isinstance(answer, dict) and answer.get("placed") == BATCH_LINES

        return batch
    if api == "legacy":

        def legacy(status: int, body: bytes) -> bool:
            answer = _json(body)
            return status == 200 and isinstance(answer, dict) and isinstance(answer.get("order"), str)

        return legacy

    def rest(status: int, body: bytes) -> bool:
        answer = _json(body)
        return status == 201 and isinstance(answer, dict) and isinstance(answer.get("id"), str)

    return rest


@dataclass(frozen=True)
class Read:
    id: str
    title: str
    api: Api
    make: Callable[[str], bytes]  # the request for an API key
    field: str  # the answer carries this member


def legacy_action(action: str) -> Callable[[str], bytes]:
    body = json.dumps({"action": action}).encode()
    return lambda key: httpload.request("POST", f"/api?key={key}", body=body)


def rest_get(path: str) -> Callable[[str], bytes]:
    return lambda key: httpload.request("GET", path, headers={"Authorization": f"Bearer {key}"})


READS = (
    Read("balance", "legacy balance", "legacy", legacy_action("balance"), "balance"),
    Read("orders", "legacy orders default page", "legacy", legacy_action("orders"), "orders"),
    Read("payments", "legacy payments default page", "legacy", legacy_action("payments"), "payments"),
    Read("balance", "GET /v1/balance", "rest", rest_get("/v1/balance"), "balance"),
    Read("orders", "GET /v1/orders default page", "rest", rest_get("/v1/orders"), "data"),
    Read("payments", "GET /v1/payments default page", "rest", rest_get("/v1/payments"), "data"),
)


def read_served(field: str) -> Callable[[int, bytes], bool]:
    def served(status: int, body: bytes) -> bool:
        answer = _json(body)
        return status == 200 and isinstance(answer, dict) and field in answer and "error" not in answer

    return served
