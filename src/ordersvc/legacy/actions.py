"""One function per legacy action: read its parameters, call the service, shape the reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.accounts.auth import key_caller
from ordersvc.accounts.callers import ApiKeyCaller
from ordersvc.accounts.models import Account
from ordersvc.db import statement_deadline
from ordersvc.errors import InvalidParams, ServiceError
from ordersvc.ledger import service as ledger
from ordersvc.legacy.params import as_int, optional_int
from ordersvc.legacy.render import COMPACT, JsonValue, Money, respond, wire_time
from ordersvc.orders import lifecycle
from ordersvc.orders import service as orders
from ordersvc.orders.models import Order
from ordersvc.orders.service import OrderNotFound
from ordersvc.pagination import DEFAULT_PER_PAGE, PageRequest

Action = Callable[[AsyncSession, Account, dict[str, Any]], Awaitable[Response]]
"""An action in the request's transaction, its key authenticated first (`endpoint`)."""
Read = Callable[[Request, object, dict[str, Any]], Awaitable[Response]]
"""A read whose one statement checks its key: no transaction around it (as `place_order`)."""


def _account_id(account: Account) -> int:
    assert account.id is not None
    return account.id


def _page_request(body: dict[str, Any]) -> PageRequest | None:
    """The `page` and `per_page` of a list; None if not readable."""
    page_ok, page = optional_int(body, "page", None)
    per_page_ok, per_page = optional_int(body, "per_page", DEFAULT_PER_PAGE)
    if not (page_ok and per_page_ok) or per_page is None:
        return None
    try:
        return PageRequest(page=page, per_page=per_page)
    except InvalidParams:
        return None


async def _page_caller(request: Request, key: object, body: dict[str, Any]) -> tuple[ApiKeyCaller, PageRequest]:
    page = _page_request(body)
    caller = await key_caller(request, key, check=page is None)  # the key's refusal comes first
    if page is None:
        raise InvalidParams()
    return caller, page


async def balance(request: Request, key: object, body: dict[str, Any]) -> Response:
    mills = await ledger.balance_of(request.app.state.engine, caller=await key_caller(request, key))
    return respond({"balance": Money(mills)})


async def list_orders(request: Request, key: object, body: dict[str, Any]) -> Response:
    caller, page_request = await _page_caller(request, key, body)
    page = await orders.list_orders(request.app.state.engine, caller=caller, page=page_request)
    # Unpacked, not read by name: a row's attribute lookup cost as much as the rest of the line.
    items: list[JsonValue] = [
        {
            "id": public_id,
            "email": email,
            "created": wire_time(created_at),
            "price": Money(price_mills),
            "status": status,
            "progress": progress,
        }
        for public_id, email, created_at, price_mills, status, progress in page.items
    ]
    return respond({"orders": items, "page": page.page, "per_page": page.per_page, "total": page.total})


async def list_payments(request: Request, key: object, body: dict[str, Any]) -> Response:
    caller, page_request = await _page_caller(request, key, body)
    page = await ledger.list_payments(request.app.state.engine, caller=caller, page=page_request)
    items: list[JsonValue] = []
    for amount_mills, created_at, email, coupon, order_public_id in page.items:
        item: dict[str, JsonValue] = {"amount": Money(amount_mills), "created": wire_time(created_at)}
        if email is not None:
            item["email"] = email
        if order_public_id is not None:
            item["order_id"] = order_public_id
        if coupon is not None:
            item["coupon"] = coupon
        items.append(item)
    return respond({"payments": items, "page": page.page, "per_page": page.per_page, "total": page.total})


def order_params(body: dict[str, Any]) -> tuple[str, int, str | None] | None:
    """The `order` action's email, quantity and optional `request_id`; None if not readable."""
    email, quantity, request_id = body.get("email"), as_int(body.get("quantity")), body.get("request_id")
    if not isinstance(email, str) or quantity is None or not isinstance(request_id, str | None):
        return None
    return email, quantity, request_id


async def place_order(request: Request, key: object, body: dict[str, Any]) -> Response:
    """`{"action":"order","email":...,"quantity":...,"request_id":...}` -> `{"order":ID}`. Not in
    `ACTIONS`: the order checks its key in its own statement, with no transaction around it."""
    params = order_params(body)
    caller = await key_caller(request, key, check=params is None)  # the key's refusal comes first
    if params is None:
        raise InvalidParams()
    email, quantity, request_id = params
    placed = await orders.place(
        request.app.state.engine,
        request.app.state.settings,
        caller=caller,
        email=email,
        quantity=quantity,
        idempotency_key=request_id,
        deadline=statement_deadline(request),
    )
    return respond({"order": placed.order.public_id}, COMPACT)


MAX_STATUS_IDS = 100


class IncorrectOrderId(ServiceError):
    code = "incorrect_order_id"
    message = "Incorrect order ID."


def _status_of(order: Order) -> dict[str, JsonValue]:
    return {"status": order.status, "progress": order.progress, "remains": order.quantity - order.delivered}


async def order_status(session: AsyncSession, account: Account, body: dict[str, Any]) -> Response:
    """`{"action":"status","order":ID}` or `{"action":"status","orders":"ID1,ID2,..."}` (up to
    100), in the panel APIs' spirit: status, progress and remains; an unknown id gets
    `{"error":"Incorrect order ID."}` (in its slot, for several)."""
    single, several = body.get("order"), body.get("orders")
    if (single is None) == (several is None):
        raise InvalidParams()
    if single is not None:
        if not isinstance(single, str):
            raise InvalidParams()
        found = await lifecycle.orders_by_ids(session, account_id=_account_id(account), public_ids=[single])
        if single not in found:
            raise IncorrectOrderId()
        return respond(_status_of(found[single]))
    if not isinstance(several, str):
        raise InvalidParams()
    ids = list(dict.fromkeys(i.strip() for i in several.split(",") if i.strip()))
    if not 1 <= len(ids) <= MAX_STATUS_IDS:
        raise InvalidParams()
    found = await lifecycle.orders_by_ids(session, account_id=_account_id(account), public_ids=ids)
    error: JsonValue = {"error": IncorrectOrderId.message}
    return respond({i: _status_of(found[i]) if i in found else error for i in ids})


async def cancel(session: AsyncSession, account: Account, body: dict[str, Any]) -> Response:
    """`{"action":"cancel","order":ID}` -> `{"order":ID,"status":...,"refund":...}`."""
    public_id = body.get("order")
    if not isinstance(public_id, str):
        raise InvalidParams()
    try:
        result = await lifecycle.cancel_order(session, account_id=_account_id(account), public_id=public_id)
    except OrderNotFound:
        raise IncorrectOrderId() from None
    return respond(
        {"order": result.order.public_id, "status": result.order.status, "refund": Money(result.refund_mills)},
        COMPACT,
    )


READS: dict[str, Read] = {
    "balance": balance,
    "orders": list_orders,
    "payments": list_payments,
}

ACTIONS: dict[str, Action] = {
    "status": order_status,
    "cancel": cancel,
}
