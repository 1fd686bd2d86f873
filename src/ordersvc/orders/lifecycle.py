"""What happens to an order after it is placed: the transitions it may make (`TRANSITIONS`, the
one table), the one function that makes them (`transition`), cancellation with exact refunds,
its history, and status look-ups. Each transition is made under the order's row lock, in the
caller's transaction.

Other domains ask for a transition here (consent: confirmed, declined, opted out; fulfilment:
claimed, resumed, ended); none of them writes an order's status."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.errors import Conflict
from ordersvc.ops import metrics
from ordersvc.orders import repository
from ordersvc.orders.errors import OrderNotFound
from ordersvc.orders.models import PUBLIC_ID_PATTERN, Order, OrderEvent, OrderStatus
from ordersvc.timestamps import utc_now

_PUBLIC_ID = re.compile(PUBLIC_ID_PATTERN)

_S = OrderStatus
TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = MappingProxyType(
    {
        # The recipient confirms (pending), or the order is canceled: by the customer, the
        # recipient's decline or opt-out, or the request's expiry (`ordersvc_expire_consent`).
        _S.AWAITING_CONFIRMATION: frozenset({_S.PENDING, _S.CANCELED}),
        # A worker claims it, or it is canceled before work starts.
        _S.PENDING: frozenset({_S.IN_PROGRESS, _S.CANCELED}),
        # In progress to in progress: resumed by another worker after a lease expired, or a
        # cancellation recorded for its worker. It ends at its delivered count: completed (all),
        # partial (some) or canceled (none).
        _S.IN_PROGRESS: frozenset({_S.IN_PROGRESS, _S.COMPLETED, _S.PARTIAL, _S.CANCELED}),
        _S.COMPLETED: frozenset(),
        _S.PARTIAL: frozenset(),
        _S.CANCELED: frozenset(),
    }
)
"""The allowed transitions, from -> to. The finished statuses have no way out."""

ENDINGS = frozenset({_S.COMPLETED, _S.PARTIAL, _S.CANCELED})
"""Statuses an order ends in: the refund of its undelivered share is paid as it gets there."""

CANCELABLE = frozenset(status for status, to in TRANSITIONS.items() if _S.CANCELED in to)
"""Where `POST /v1/orders/{id}/cancel` (and the legacy `cancel`) is accepted: every status from
which the order may end canceled. Before work starts it ends now; in progress the cancellation
is recorded for its worker (accepted again, with nothing more to do, once recorded)."""


class OrderNotCancelable(Conflict):
    code = "order_not_cancelable"
    message = "This order is already finished and can no longer be canceled."


class TransitionNotAllowed(Exception):
    """A transition that `TRANSITIONS` does not allow was asked for: a bug of its caller, which
    checks the order's status first (under its lock) and refuses in its own words."""

    def __init__(self, from_status: OrderStatus, to_status: OrderStatus) -> None:
        super().__init__(f"an order cannot go from {from_status.value!r} to {to_status.value!r}")
        self.from_status = from_status
        self.to_status = to_status


def allowed(from_status: OrderStatus | str, to_status: OrderStatus | str) -> bool:
    return OrderStatus(to_status) in TRANSITIONS[OrderStatus(from_status)]


def cancelable(status: OrderStatus | str) -> bool:
    """Whether a cancel of an order in this status is accepted now."""
    return OrderStatus(status) in CANCELABLE


async def transition(
    session: AsyncSession, order: Order, to: OrderStatus, reason: str, *, cancel_requested: bool = False
) -> int:
    """Move the order the caller has locked to `to` and record it in its history with `reason`;
    refused (`TransitionNotAllowed`) unless `TRANSITIONS` allows it. An ending (`ENDINGS`) also
    pays back the undelivered share of the price, price x (quantity - delivered) / quantity
    rounded down to the mill, in the database's `ordersvc_end_order` (`orders/sql/`). With
    `cancel_requested` (in progress to in progress only), the order's worker is told at its next
    call to stop. Returns the refund in mills (0 unless it ended with something undelivered).
    The order object shows its new state afterwards."""
    from_status = OrderStatus(order.status)
    requests_cancel_in_progress = from_status is _S.IN_PROGRESS and to is _S.IN_PROGRESS
    if to not in TRANSITIONS[from_status] or (cancel_requested and not requests_cancel_in_progress):
        raise TransitionNotAllowed(from_status, to)
    if to not in ENDINGS:
        await repository.set_status(
            session, order, to.value, reason, cancel_requested_at=utc_now() if cancel_requested else None
        )
        return 0
    refund = await repository.end_order(session, order, to.value, reason)
    if refund > 0:
        metrics.count_after_commit(session, metrics.REFUNDS.inc)
        metrics.count_after_commit(session, lambda: metrics.REFUNDED_MILLS.inc(refund))
    return refund


async def finish(session: AsyncSession, order: Order, reason: str) -> int:
    """End an order in progress at its delivered count: completed (everything delivered),
    partial (some: refund of the undelivered share) or canceled (nothing: full refund).
    Returns the refund in mills."""
    if order.delivered >= order.quantity:
        status = _S.COMPLETED
    elif order.delivered > 0:
        status = _S.PARTIAL
    else:
        status = _S.CANCELED
    return await transition(session, order, status, reason)


@dataclass(frozen=True, slots=True)
class Cancellation:
    order: Order
    refund_mills: int  # paid now; 0 when the cancellation waits for the order's worker


async def locked_order(session: AsyncSession, *, account_id: int, public_id: str) -> Order:
    """The account's order, locked for the rest of the transaction (OrderNotFound)."""
    order = None
    if _PUBLIC_ID.fullmatch(public_id):
        order = await repository.lock_order(session, account_id, public_id)
    if order is None:
        raise OrderNotFound()
    return order


async def cancel_order(session: AsyncSession, *, account_id: int, public_id: str) -> Cancellation:
    """Before work starts: canceled now, with a full refund. In progress: the cancellation is
    recorded and the worker is told at its next call (the order then ends `partial` with a
    refund of the undelivered share). Finished: refused. Concurrent cancels are serialised by
    the order's lock, so a refund is paid once."""
    order = await locked_order(session, account_id=account_id, public_id=public_id)
    return await cancel_locked(
        session, order, "canceled by the customer", in_progress_reason="cancellation requested by the customer"
    )


async def cancel_locked(
    session: AsyncSession, order: Order, reason: str, *, in_progress_reason: str | None = None
) -> Cancellation:
    """Cancel an order the caller has locked: refunded in full now if work has not started,
    flagged for its worker if it has (once: a second request changes nothing and is accepted);
    refused if it is finished."""
    status = OrderStatus(order.status)
    if not cancelable(status):
        raise OrderNotCancelable()
    if status is _S.IN_PROGRESS:
        if order.cancel_requested_at is None:
            await transition(session, order, _S.IN_PROGRESS, in_progress_reason or reason, cancel_requested=True)
        return Cancellation(order, 0)
    return Cancellation(order, await transition(session, order, _S.CANCELED, reason))


async def order_events(session: AsyncSession, *, account_id: int, public_id: str) -> list[OrderEvent]:
    """The order's transitions, oldest first (another account's order is not found)."""
    order = await repository.get_order(session, account_id, public_id) if _PUBLIC_ID.fullmatch(public_id) else None
    if order is None:
        raise OrderNotFound()
    assert order.id is not None
    return await repository.events_of(session, order.id)


async def orders_by_ids(session: AsyncSession, *, account_id: int, public_ids: list[str]) -> dict[str, Order]:
    """The account's orders among these ids (unknown and other accounts' ids are absent)."""
    wanted = [i for i in public_ids if _PUBLIC_ID.fullmatch(i)]
    return await repository.orders_by_public_ids(session, account_id, wanted) if wanted else {}


async def orders_with_charges(
    session: AsyncSession, *, account_id: int, public_ids: list[str]
) -> dict[str, tuple[Order, int]]:
    """`orders_by_ids`, each order with what it cost in mills: its price while it is open, less
    the refund its ending paid (the panel API's `charge`)."""
    wanted = [i for i in public_ids if _PUBLIC_ID.fullmatch(i)]
    if not wanted:
        return {}
    return await repository.orders_with_charges(session, account_id, wanted, [s.value for s in ENDINGS])
