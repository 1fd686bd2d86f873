"""The one-statement order, as both HTTP adapters (the legacy `order` action and
`POST /v1/orders`) try it before their full path: the rate limit, the request's time limit, then
`orders.place_order_with_key`."""

from __future__ import annotations

from fastapi import Request

from ordersvc.accounts.service import API_KEYS
from ordersvc.db import suspend_deadline
from ordersvc.errors import InvalidApiKey
from ordersvc.ops import ratelimit
from ordersvc.orders import service as orders


async def place_in_one_statement(
    request: Request, *, api_key: str, email: str, quantity: int, idempotency_key: str | None
) -> orders.NewOrder | None:
    """The order, placed by one autocommit statement, or None where the caller's full path must
    answer (it wrote nothing): see `orders.place_order_with_key`. Raises the same refusals as
    the full path, in its order.

    The token comes first, and only for a key this process has seen authenticated
    (`ratelimit.may_take_before_check`): a key it does not know, like an empty bucket, goes to the
    full path, which checks the key before it takes a token or says "too many requests". A
    request takes one token whichever path it ends on. An order with an idempotency key (REST
    `Idempotency-Key`, legacy `request_id`) always takes the full path."""
    if idempotency_key is not None or not API_KEYS.well_formed(api_key):
        return None
    bucket = ratelimit.key_bucket(api_key)
    if not ratelimit.may_take_before_check(request, bucket):
        return None
    try:
        await ratelimit.enforce(request, bucket)
    except ratelimit.RateLimited:
        request.state.rate_limit = None  # the full path decides again, after the key
        return None
    # The statement commits itself: no time limit may cancel it (the client would hear "not
    # completed" about a placed order). What is left of the request's time bounds its lock waits.
    deadline = suspend_deadline(request)
    try:
        order = await orders.place_order_with_key(
            request.app.state.engine,
            api_key=api_key,
            email=email,
            quantity=quantity,
            deadline=deadline.when,
        )
    except InvalidApiKey:
        request.state.rate_limit = None  # revoked since: nothing to report
        raise
    if order is None:
        deadline.resume()  # nothing was written: the full path runs under the request's time limit
    return order
