"""The one-statement order, as both HTTP adapters (the legacy `order` action and
`POST /v1/orders`) try it before their full path: the rate limit, the request's time limit, then
`orders.place_order_with_key`."""

from __future__ import annotations

from fastapi import Request

from ordersvc.db import suspend_deadline
from ordersvc.errors import InvalidApiKey
from ordersvc.ops import ratelimit
from ordersvc.orders import service as orders


async def place_in_one_statement(
    request: Request, *, api_key: str, email: str, quantity: int
) -> orders.NewOrder | None:
    """The order, placed by one autocommit statement, or None where the caller's full path must
    answer (it wrote nothing): see `orders.place_order_with_key`. Raises the same refusals as
    the full path, in its order.

    The key's bucket is taken first. It is named by a digest of the whole key
    (`ratelimit.key_bucket`), so a stranger's key spends nothing of its owner's. An empty bucket
    goes to the full path, which checks the key before it says "too many requests"."""
    try:
        await ratelimit.enforce(request, api_key)
    except ratelimit.RateLimited:
        request.state.rate_limit = None  # the full path decides again, after the key
        return None
    # The statement commits itself: no time limit may cancel it (the client would hear "not
    # completed" about a placed order); its lock waits get what was left of the request's time.
    deadline = suspend_deadline(request)
    try:
        order = await orders.place_order_with_key(
            request.app.state.engine,
            api_key=api_key,
            email=email,
            quantity=quantity,
            lock_timeout_ms=deadline.left_ms(),
        )
    except InvalidApiKey:
        request.state.rate_limit = None  # a stranger's key: no bucket to report
        raise
    if order is None:
        deadline.resume()  # nothing was written: the full path runs under the request's time limit
    return order
