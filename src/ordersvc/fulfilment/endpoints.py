"""REST for fulfilment workers (worker tokens, not customer keys)."""

from __future__ import annotations

from fastapi import APIRouter, Path

from ordersvc.errors import InvalidParams, NotFound
from ordersvc.fulfilment import service as fulfilment
from ordersvc.fulfilment.auth import WorkerDep
from ordersvc.fulfilment.schemas import (
    ClaimedList,
    ClaimedOrder,
    ClaimRequest,
    FailRequest,
    HeartbeatRequest,
    ProgressRequest,
    WorkStateOut,
)
from ordersvc.fulfilment.service import WorkState
from ordersvc.ops.client_text import CleanedBodyRoute, GuardedRoute
from ordersvc.orders.schemas import ORDER_ID_PATTERN
from ordersvc.problems import problem_responses
from ordersvc.request_db import SessionDep

router = APIRouter(prefix="/v1/fulfilment", tags=["fulfilment"], route_class=GuardedRoute)
OrderId = Path(pattern=ORDER_ID_PATTERN, description="Public order id.")


@router.post(
    "/claim", operation_id="fulfilment_claim", summary="Claim orders", responses=problem_responses(InvalidParams)
)
async def fulfilment_claim(body: ClaimRequest, worker: WorkerDep, session: SessionDep) -> ClaimedList:
    """Up to `limit` orders ready for work (their recipient confirmed), each leased to you for
    `lease_seconds`: keep the lease with heartbeats or progress reports. An expired lease puts
    the order back in the queue with its delivered count kept. Two workers never get the same
    order. Put each order's `opt_out_url` in every delivery."""
    claimed = await fulfilment.claim(session, worker=worker, limit=body.limit, lease_seconds=body.lease_seconds)
    return ClaimedList(data=[ClaimedOrder.of(c) for c in claimed])


@router.post(
    "/orders/{order_id}/progress",
    operation_id="fulfilment_progress",
    summary="Report progress",
    responses=problem_responses(NotFound, fulfilment.OrderNotHeld, fulfilment.InvalidProgress),
)
async def fulfilment_progress(
    body: ProgressRequest, worker: WorkerDep, session: SessionDep, order_id: str = OrderId
) -> WorkStateOut:
    """Units delivered so far: monotonic, at most the quantity (409 `invalid_progress`
    otherwise). `stop: true` means the order was canceled: stop now."""
    state = await fulfilment.report_progress(session, worker=worker, public_id=order_id, delivered=body.delivered)
    return WorkStateOut.of(state)


@router.post(
    "/orders/{order_id}/heartbeat",
    operation_id="fulfilment_heartbeat",
    summary="Extend the lease",
    responses=problem_responses(InvalidParams, NotFound, fulfilment.OrderNotHeld),
)
async def fulfilment_heartbeat(
    body: HeartbeatRequest, worker: WorkerDep, session: SessionDep, order_id: str = OrderId
) -> WorkStateOut:
    """Keep the order: the lease runs `lease_seconds` from now. `stop: true`: canceled, stop."""
    state = await fulfilment.heartbeat(session, worker=worker, public_id=order_id, lease_seconds=body.lease_seconds)
    return WorkStateOut.of(state)


@router.post(
    "/orders/{order_id}/complete",
    operation_id="fulfilment_complete",
    summary="Complete an order",
    responses=problem_responses(NotFound, fulfilment.OrderNotHeld),
)
async def fulfilment_complete(worker: WorkerDep, session: SessionDep, order_id: str = OrderId) -> WorkStateOut:
    """Everything was delivered: the order is `completed`."""
    order = await fulfilment.complete(session, worker=worker, public_id=order_id)
    return WorkStateOut.of(WorkState(order, True))


async def fulfilment_fail(
    body: FailRequest, worker: WorkerDep, session: SessionDep, order_id: str = OrderId
) -> WorkStateOut:
    """Stop at the delivered count: `partial` with a refund of the undelivered share, or
    `canceled` with a full refund when nothing was delivered."""
    order = await fulfilment.fail(session, worker=worker, public_id=order_id, reason=body.reason)
    return WorkStateOut.of(WorkState(order, True))


# The reason (the runtime sends "<exception>: <message>") is stored cleaned, never refused: a
# refused report would leave the order claimed until its lease ran out.
router.add_api_route(
    "/orders/{order_id}/fail",
    fulfilment_fail,
    methods=["POST"],
    operation_id="fulfilment_fail",
    summary="Give up on an order",
    responses=problem_responses(NotFound, fulfilment.OrderNotHeld),
    route_class_override=CleanedBodyRoute,
)
