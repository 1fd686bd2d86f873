"""What happens to an order after it is placed: cancellation with exact refunds, its history,
and status look-ups. Each transition is one transaction under the order's row lock."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.errors import Conflict
from ordersvc.ledger import service as ledger
from ordersvc.ledger.models import PaymentKind
from ordersvc.ops import metrics
from ordersvc.orders import repository
from ordersvc.orders.errors import OrderNotFound
from ordersvc.orders.models import PUBLIC_ID_PATTERN, Order, OrderEvent, OrderStatus
from ordersvc.timestamps import utc_now

_PUBLIC_ID = re.compile(PUBLIC_ID_PATTERN)


class OrderNotCancelable(Conflict):
    code = "order_not_cancelable"
    message = "This order is already finished and can no longer be canceled."


async def refund_undelivered(session: AsyncSession, order: Order) -> int:
    """Pay back the undelivered share of the order's price (a `refund` payment carrying the
    order id); the caller holds the order's lock and makes this transition once. Returns it."""
    refund = refund_mills(order)
    if refund > 0:
        assert order.id is not None
        await ledger.post_payment(
            session,
            account_id=order.account_id,
            kind=PaymentKind.REFUND,
            amount_mills=refund,
            email=order.email,
            order_id=order.id,
        )
        metrics.count_after_commit(session, metrics.REFUNDS.inc)
        metrics.count_after_commit(session, lambda: metrics.REFUNDED_MILLS.inc(refund))
    return refund


def refund_mills(order: Order) -> int:
    """price x (quantity - delivered) / quantity, rounded down to the mill: the refund never
    exceeds the undelivered share, so charge and refunds together never return more than was
    paid. (With price = quantity mills it is exactly quantity - delivered mills.)"""
    return order.price_mills * (order.quantity - order.delivered) // order.quantity


@dataclass(frozen=True, slots=True)
class Cancellation:
    order: Order
    refund_mills: int  # paid now; 0 when the cancellation waits for the order's worker


async def _locked(session: AsyncSession, account_id: int, public_id: str) -> Order:
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
    order = await _locked(session, account_id, public_id)
    return await cancel_locked(
        session, order, "canceled by the customer", in_progress_reason="cancellation requested by the customer"
    )


async def cancel_locked(
    session: AsyncSession, order: Order, reason: str, *, in_progress_reason: str | None = None
) -> Cancellation:
    """Cancel an order the caller has locked: refunded in full now if work has not started,
    flagged for its worker if it has; refused if it is finished."""
    status = OrderStatus(order.status)
    if status in (OrderStatus.AWAITING_CONFIRMATION, OrderStatus.PENDING):
        await repository.set_status(session, order, OrderStatus.CANCELED.value, reason)
        return Cancellation(order, await refund_undelivered(session, order))
    if status is OrderStatus.IN_PROGRESS:
        if order.cancel_requested_at is None:
            await repository.set_status(
                session, order, order.status, in_progress_reason or reason, cancel_requested_at=utc_now()
            )
        return Cancellation(order, 0)
    raise OrderNotCancelable()


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
