"""One function per panel API v2 action: read its parameters, call one service, shape the reply.
No rule lives here: each refusal is the service's, in the dialect's words (`errors`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from ordersvc.accounts import service as accounts
from ordersvc.accounts.auth import key_caller
from ordersvc.accounts.models import Account
from ordersvc.db import request_transaction, statement_deadline
from ordersvc.errors import ServiceError
from ordersvc.ledger import service as ledger
from ordersvc.legacy.params import as_int
from ordersvc.legacy.render import JsonValue
from ordersvc.money import format_usd
from ordersvc.ops import ratelimit
from ordersvc.ops.dberrors import is_database_unavailable
from ordersvc.orders import lifecycle
from ordersvc.orders import service as orders
from ordersvc.orders.errors import OrderNotFound
from ordersvc.orders.models import MAX_QUANTITY, MIN_QUANTITY, Order
from ordersvc.panel.errors import (
    IncorrectOrderId,
    IncorrectRefillId,
    IncorrectRequest,
    IncorrectServiceId,
    RefillDisabled,
    text,
)
from ordersvc.panel.wire import STATUS_NAMES, answer, panel_id, public_id_of

SERVICE_ID = 1  # the one service: an order to a mailbox whose owner confirms first
CURRENCY = "USD"
MAX_IDS = 100  # ids per `status` or `cancel`, as the dialect allows


async def check_key(request: Request, key: object) -> None:
    await key_caller(request, key, check=True)


async def _account(request: Request, key: object) -> Account:
    """The key's account, then its rate limit (as every API takes it)."""
    async with request.app.state.sessionmaker() as session:
        account = await accounts.authenticate(session, api_key=key)
    assert isinstance(key, str)
    await ratelimit.enforce_key(request, key)
    return account


def _ids(body: dict[str, Any], name: str) -> list[str] | None:
    """The comma-separated ids of `name` (1 to 100, first occurrence kept); None if not readable."""
    value = body.get(name)
    if not isinstance(value, str):
        return None
    ids = list(dict.fromkeys(i.strip() for i in value.split(",") if i.strip()))
    return ids if 1 <= len(ids) <= MAX_IDS else None


def _as_number(raw: str) -> JsonValue:
    """An id as the client sent it, back as a number when it is one (the dialect's `"order": 1`)."""
    number = as_int(raw)
    return number if number is not None else raw


async def services(request: Request, key: object, body: dict[str, Any]) -> Response:
    await check_key(request, key)
    return answer(
        [
            {
                "service": SERVICE_ID,
                "name": "Order to a confirmed mailbox",
                "type": "Default",
                "category": "Email",
                "rate": format_usd(orders.price_mills(1000)),
                "min": str(MIN_QUANTITY),
                "max": str(MAX_QUANTITY),
                "refill": False,
                "cancel": True,
            }
        ]
    )


async def add(request: Request, key: object, body: dict[str, Any]) -> Response:
    """`service`, `link` (the recipient's email), `quantity`, optional `request_id` ->
    `{"order": <integer>}`."""
    service, link, request_id = as_int(body.get("service")), body.get("link"), body.get("request_id")
    quantity = as_int(body.get("quantity"))
    readable = service == SERVICE_ID and isinstance(request_id, str | None)
    caller = await key_caller(request, key, check=not readable)  # the key's refusal first
    if service != SERVICE_ID:
        raise IncorrectServiceId()
    if not isinstance(request_id, str | None):
        raise IncorrectRequest()
    if quantity is None:  # not a whole number: no order has it
        raise orders.InvalidQuantity()
    placed = await orders.place(
        request.app.state.engine,
        request.app.state.settings,
        caller=caller,
        email=link if isinstance(link, str) else "",
        quantity=quantity,
        idempotency_key=request_id,
        deadline=statement_deadline(request),
    )
    return answer({"order": panel_id(placed.order.public_id)})


def _status_of(order: Order, charged_mills: int) -> dict[str, JsonValue]:
    return {
        "charge": format_usd(charged_mills),
        "start_count": "0",
        "status": STATUS_NAMES[order.status],
        "remains": str(order.quantity - order.delivered),
        "currency": CURRENCY,
    }


async def status(request: Request, key: object, body: dict[str, Any]) -> Response:
    """`order` -> its status; `orders=1,2,3` (up to 100) -> an object keyed by the ids sent."""
    single, several = body.get("order"), body.get("orders")
    account = await _account(request, key)
    assert account.id is not None
    ids = _ids(body, "orders") if single is None else [single]
    if ids is None or (single is None) == (several is None):
        raise IncorrectRequest()
    if single is not None and not isinstance(single, str | int | Decimal):  # a list, an object
        raise IncorrectOrderId()
    wanted = {raw: public_id_of(raw) for raw in ids}
    async with request.app.state.sessionmaker() as session:
        found = await lifecycle.orders_with_charges(
            session, account_id=account.id, public_ids=[p for p in wanted.values() if p is not None]
        )
    if single is not None:
        public_id = wanted[single]
        if public_id is None or public_id not in found:
            raise IncorrectOrderId()
        return answer(_status_of(*found[public_id]))
    missing: JsonValue = {"error": IncorrectOrderId.message}
    return answer(
        {str(raw): _status_of(*found[p]) if p is not None and p in found else missing for raw, p in wanted.items()}
    )


async def _cancel_one(request: Request, account_id: int, raw: str) -> JsonValue:
    public_id = public_id_of(raw)
    try:
        if public_id is None:
            raise IncorrectOrderId()
        async with request_transaction(request) as session:
            await lifecycle.cancel_order(session, account_id=account_id, public_id=public_id)
    except OrderNotFound:
        return {"error": IncorrectOrderId.message}
    except ServiceError as exc:
        return {"error": text(exc)}
    return 1


def _unavailable(error: Exception) -> bool:
    return isinstance(error, TimeoutError) or is_database_unavailable(error)


async def cancel(request: Request, key: object, body: dict[str, Any]) -> Response:
    """`orders=1,2` (up to 100) -> `[{"order": 1, "cancel": 1}, {"order": 2, "cancel": {"error":
    "..."}}]`: each order canceled alone, in its own transaction (as `POST /v1/orders/{id}/cancel`)."""
    account = await _account(request, key)
    assert account.id is not None
    ids = _ids(body, "orders")
    single = as_int(body.get("order"))
    if ids is None and single is not None:
        ids = [str(single)]
    if ids is None:
        raise IncorrectRequest()
    results: list[JsonValue] = []
    outage: JsonValue | None = None
    for raw in ids:
        # Each cancel commits alone: an outage midway is told in the slots it reached, not as
        # one error that would hide the cancels already made.
        if outage is None:
            try:
                outcome = await _cancel_one(request, account.id, raw)
            except Exception as exc:
                if not _unavailable(exc):
                    raise
                outcome = outage = {"error": text(exc)}
        else:
            outcome = outage
        results.append({"order": _as_number(raw), "cancel": outcome})
    return answer(results)


async def balance(request: Request, key: object, body: dict[str, Any]) -> Response:
    caller = await key_caller(request, key)
    mills = await ledger.balance_of(request.app.state.engine, caller=caller)
    return answer({"balance": format_usd(mills), "currency": CURRENCY})


async def refill(request: Request, key: object, body: dict[str, Any]) -> Response:
    """The one service has no refill: `order` -> the dialect's error; `orders` -> one per id."""
    await check_key(request, key)
    ids = _ids(body, "orders")
    if ids is None:
        raise RefillDisabled()
    return answer([{"order": _as_number(raw), "refill": {"error": RefillDisabled.message}} for raw in ids])


async def refill_status(request: Request, key: object, body: dict[str, Any]) -> Response:
    """No refill was ever made: `refill` -> `Incorrect refill ID`; `refills` -> one per id."""
    await check_key(request, key)
    ids = _ids(body, "refills")
    if ids is None:
        raise IncorrectRefillId()
    return answer([{"refill": _as_number(raw), "status": {"error": IncorrectRefillId.message}} for raw in ids])
