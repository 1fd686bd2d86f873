"""REST: orders."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi import status as http_status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from ordersvc import idempotency
from ordersvc.accounts import service as accounts
from ordersvc.accounts.auth import (
    SESSION_COOKIE,
    UNAUTHORIZED_DETAIL,
    AccountDep,
    Credentials,
    CredentialsDep,
    caller_of,
    key_from_request,
)
from ordersvc.csv_export import EXPORT_ERRORS, ExportSlotDep, csv_response
from ordersvc.db import statement_deadline
from ordersvc.emails import InvalidEmail
from ordersvc.errors import InvalidApiKey, InvalidParams
from ordersvc.ledger.service import InsufficientBalance
from ordersvc.money import format_usd
from ordersvc.ops import ratelimit
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.orders import lifecycle
from ordersvc.orders import service as orders
from ordersvc.orders.errors import OrderNotFound, RecipientOptedOut
from ordersvc.orders.schemas import (
    ORDER_ID_PATTERN,
    OrderBatchCreate,
    OrderBatchOut,
    OrderCancellation,
    OrderCreate,
    OrderEventList,
    OrderEventOut,
    OrderList,
    OrderOut,
    OrderStatus,
)
from ordersvc.pagination import DEFAULT_LIMIT, LIST_ERRORS, MAX_PER_PAGE
from ordersvc.problems import problem_responses
from ordersvc.request_db import SessionDep
from ordersvc.timestamps import utc_param

router = APIRouter(prefix="/v1", tags=["orders"], route_class=GuardedRoute)

OrderId = Annotated[str, Path(pattern=ORDER_ID_PATTERN, description="Public order id, e.g. `A7E17A3E`.")]
Cursor = Annotated[str | None, Query(pattern=ORDER_ID_PATTERN)]


class OrderCreateRoute(GuardedRoute):
    """`POST /v1/orders`, parsed before FastAPI solves the route's dependencies: for the usual
    request (an API key or session, a JSON body the model accepts) that work was a fifth of a
    worker's CPU, as much as the order itself. Parsing only: the order is `_create`'s, as for the
    route as declared, which answers everything this parse does not accept (every refusal of
    the body included). Behind the guard like the rest: no refused text reaches it."""

    def get_handler_behind_guard(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_handler_behind_guard()

        async def handle(request: Request) -> Response:
            parsed = await _parse(request)
            if parsed is None:
                return await handler(request)
            out, replayed = await _create(request, *parsed)
            headers = {idempotency.REPLAYED_HEADER: "true"} if replayed else None
            body = out.model_dump_json()  # what the route's response model writes
            return Response(
                body, status_code=http_status.HTTP_201_CREATED, media_type="application/json", headers=headers
            )

        return handle


async def _parse(request: Request) -> tuple[Credentials, OrderCreate, str | None] | None:
    """What the declared route would parse, for the requests it would accept; else None."""
    content_type = request.headers.get("content-type", "")
    if content_type.partition(";")[0].strip().lower() != "application/json":
        return None
    credentials = Credentials(await key_from_request(request), request.cookies.get(SESSION_COOKIE))
    if credentials.key is None and credentials.cookie is None:
        return None
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and len(idempotency_key) > idempotency.MAX_KEY_LENGTH:
        return None
    try:
        body = OrderCreate.model_validate_json(await request.body())  # the body stays cached for the route
    except ValidationError:
        return None
    return credentials, body, idempotency_key


async def _create(
    request: Request, credentials: Credentials, body: OrderCreate, idempotency_key: str | None
) -> tuple[OrderOut, bool]:
    caller = await caller_of(request, credentials)
    try:
        placed = await orders.place(
            request.app.state.engine,
            request.app.state.settings,
            caller=caller,
            email=body.email,
            quantity=body.quantity,
            idempotency_key=idempotency_key,
            deadline=statement_deadline(request),
        )
    except InvalidApiKey:
        raise InvalidApiKey(UNAUTHORIZED_DETAIL) from None
    return OrderOut.of(placed.order), placed.replayed


async def orders_create(
    body: OrderCreate,
    request: Request,
    credentials: CredentialsDep,
    response: Response,
    idempotency_key: idempotency.IdempotencyKeyHeader = None,
) -> OrderOut:
    """Place an order and debit its price (quantity / 1000 USD) from the balance at once.

    Refused with 402 `insufficient_balance` when the balance does not cover the price, and with
    422 `invalid_email` or `invalid_quantity` (500 to 50000) for bad input; a refused request
    changes nothing. Send an `Idempotency-Key` so that a retry after a timeout can never order
    twice. A replayed response carries `Idempotent-Replayed: true`."""
    out, replayed = await _create(request, credentials, body, idempotency_key)
    if replayed:
        response.headers[idempotency.REPLAYED_HEADER] = "true"
    return out


router.add_api_route(
    "/orders",
    operation_id="orders_create",
    summary="Place an order",
    status_code=http_status.HTTP_201_CREATED,
    responses={
        201: {
            "description": "The order, placed now or (with `Idempotent-Replayed: true`) by an earlier request "
            "with the same Idempotency-Key.",
            "headers": idempotency.REPLAYED_RESPONSE_HEADER,
        },
        **problem_responses(
            InsufficientBalance,
            InvalidEmail,
            orders.InvalidQuantity,
            idempotency.InvalidIdempotencyKey,
            idempotency.IdempotencyConflict,
            RecipientOptedOut,
        ),
    },
    endpoint=orders_create,
    methods=["POST"],
    route_class_override=OrderCreateRoute,
)


@router.post(
    "/orders/batch",
    operation_id="orders_batch",
    summary="Place a mass order",
    responses={
        200: {
            "description": "Each line's order or problem, in order; or (with `Idempotent-Replayed: true`) the answer "
            "an earlier request with the same Idempotency-Key got.",
            "headers": idempotency.REPLAYED_RESPONSE_HEADER,
        },
        **problem_responses(
            orders.InvalidBatch,
            idempotency.InvalidIdempotencyKey,
            idempotency.IdempotencyConflict,
        ),
    },
)
async def orders_batch(
    body: OrderBatchCreate,
    request: Request,
    credentials: CredentialsDep,
    response: Response,
    idempotency_key: idempotency.IdempotencyKeyHeader = None,
) -> OrderBatchOut:
    """Place up to 100 orders at once. Each line is decided alone, in the given order, as if sent
    one by one to `POST /v1/orders`: a line the balance no longer covers is refused
    (`insufficient_balance`) and the next, cheaper one may still be placed. The answer is 200 with
    every line's order or problem; only a problem of the whole request (the key, the number of
    lines, the batch's Idempotency-Key) is an error status.

    Send an `Idempotency-Key`: a retry of the same batch gets the first answer again, refusals
    included, and never places a line twice, even after a failure midway (a 503 means some lines
    may be placed: retry with the same key to learn which). Each line may also carry its own
    `idempotency_key`."""
    caller = await caller_of(request, credentials)
    lines = [orders.OrderLine(line.email, line.quantity, line.idempotency_key) for line in body.orders]
    await ratelimit.take_more(request, len(lines) - 1)  # a line is an order: one token each
    try:
        placed = await orders.place_batch(
            request.app.state.engine,
            request.app.state.settings,
            caller=caller,
            lines=lines,
            idempotency_key=idempotency_key,
            deadline=statement_deadline(request),
        )
    except InvalidApiKey:
        raise InvalidApiKey(UNAUTHORIZED_DETAIL) from None
    if placed.replayed:
        response.headers[idempotency.REPLAYED_HEADER] = "true"
    return OrderBatchOut.of(placed)


@router.get(
    "/orders/export",
    operation_id="orders_export",
    summary="Export your orders (CSV)",
    response_class=StreamingResponse,
    responses={
        200: {"description": "Every order, newest first.", "content": {"text/csv": {}}},
        **problem_responses(*EXPORT_ERRORS),
    },
)
async def orders_export(request: Request, slot: ExportSlotDep, account: AccountDep) -> StreamingResponse:
    """Every one of your orders as CSV (`id,email,quantity,price,status,progress,created`),
    newest first, streamed from one consistent snapshot."""
    assert account.id is not None
    account_id = account.id
    return csv_response(
        request, slot, f"account:{account_id}", "orders.csv",
        ["id", "email", "quantity", "price", "status", "progress", "created"],
        lambda session: orders.export_orders(session, account_id=account_id),
        lambda o: [o.public_id, o.email, o.quantity, format_usd(o.price_mills), OrderStatus.of(o.status).value,
                   o.progress, o.created_at],
    )  # fmt: skip


@router.get(
    "/orders/{order_id}",
    operation_id="orders_get",
    summary="Get an order",
    responses=problem_responses(OrderNotFound),
)
async def orders_get(order_id: OrderId, account: AccountDep, session: SessionDep) -> OrderOut:
    """One of your orders, with its current status and progress. Another account's order is
    404, exactly like an order that does not exist."""
    assert account.id is not None
    return OrderOut.of(await orders.get_order(session, account_id=account.id, public_id=order_id))


@router.get(
    "/orders",
    operation_id="orders_list",
    summary="List your orders",
    responses=problem_responses(*LIST_ERRORS),
)
async def orders_list(
    request: Request,
    credentials: CredentialsDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Page size.")] = DEFAULT_LIMIT,
    starting_after: Annotated[Cursor, Query(description="An order id: return older orders (the next page).")] = None,
    ending_before: Annotated[Cursor, Query(description="An order id: return newer orders (the previous page).")] = None,
    status: Annotated[OrderStatus | None, Query(description="Only orders in this status.")] = None,
    email: Annotated[
        str | None, Query(max_length=254, pattern=r"^[^\x00]*$", description="Only orders to this email (any case).")
    ] = None,
    created_gte: Annotated[datetime | None, Query(description="Only orders created at or after (ISO 8601).")] = None,
    created_lt: Annotated[datetime | None, Query(description="Only orders created before (ISO 8601).")] = None,
) -> OrderList:
    """Your orders, newest first. Page forwards with `starting_after=<last id of the page>` and
    backwards with `ending_before=<first id of the page>`; `has_more` tells whether another page
    lies that way. New orders never shift the pages you are walking."""
    caller = await caller_of(request, credentials)
    engine = request.app.state.engine
    try:
        try:
            filters = orders.OrderFilters(
                status=status.stored.value if status else None,
                email=email,
                created_gte=utc_param("created_gte", created_gte),
                created_lt=utc_param("created_lt", created_lt),
            )
        except InvalidParams:
            await accounts.check_caller(engine, caller)  # the key's refusal comes first
            raise
        page = await orders.page_orders(
            engine,
            caller=caller,
            filters=filters,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
        )
    except InvalidApiKey:
        raise InvalidApiKey(UNAUTHORIZED_DETAIL) from None
    return OrderList(data=[OrderOut.of(order) for order in page.items], has_more=page.has_more)


@router.post(
    "/orders/{order_id}/cancel",
    operation_id="orders_cancel",
    summary="Cancel an order",
    responses={
        200: {"description": "Canceled now, or replayed.", "headers": idempotency.REPLAYED_RESPONSE_HEADER},
        **problem_responses(
            OrderNotFound,
            lifecycle.OrderNotCancelable,
            idempotency.InvalidIdempotencyKey,
            idempotency.IdempotencyConflict,
        ),
    },
)
async def orders_cancel(
    order_id: OrderId,
    account: AccountDep,
    session: SessionDep,
    response: Response,
    idempotency_key: idempotency.IdempotencyKeyHeader = None,
) -> OrderCancellation:
    """Before work starts (`awaiting_confirmation`, `pending`): the order is `canceled` and its
    price refunded in full, now. In progress: the cancellation is recorded, the worker stops at
    its next call, and the order ends `partial` with a refund of the undelivered share.
    Finished orders: 409 `order_not_cancelable`. Cancelling twice never refunds twice; with an
    `Idempotency-Key`, a retry gets the first answer again."""
    assert account.id is not None
    account_id = account.id

    async def cancel() -> tuple[OrderCancellation, int]:
        result = await lifecycle.cancel_order(session, account_id=account_id, public_id=order_id)
        refund = format_usd(result.refund_mills)
        return OrderCancellation(order=OrderOut.of(result.order), refund=refund), http_status.HTTP_200_OK

    keyed = idempotency.Keyed(account_id, "orders_cancel", idempotency_key, idempotency.fingerprint(order=order_id))
    return (await idempotency.once(session, keyed, OrderCancellation, cancel)).render(response)


@router.get(
    "/orders/{order_id}/events",
    operation_id="orders_events",
    summary="Get an order's history",
    responses=problem_responses(OrderNotFound),
)
async def orders_events(order_id: OrderId, account: AccountDep, session: SessionDep) -> OrderEventList:
    """Every transition of the order, oldest first: placed, confirmed, started, canceled..."""
    assert account.id is not None
    events = await lifecycle.order_events(session, account_id=account.id, public_id=order_id)
    return OrderEventList(data=[OrderEventOut.of(event) for event in events])
