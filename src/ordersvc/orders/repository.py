from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.accounts.models import Account
from ordersvc.orders.models import IdempotencyKey, Order, OrderEvent
from ordersvc.pagination import (
    OWNER,
    CursorRequest,
    NumberedList,
    PageWindow,
    fetch_cursor_page,
    owned_by,
)

OrderLine = sa.Row[str, str, datetime | None, int, str, int]
"""An order as the legacy list shows it: public_id, email, created_at, price_mills, status, progress."""

_ORDER_LINES = NumberedList(
    sa.select(
        col(Order.public_id),
        col(Order.email),
        col(Order.created_at),
        col(Order.price_mills),
        col(Order.status),
        col(Order.progress),
    ).where(owned_by(col(Order.account_id), OWNER)),
    id_column=col(Order.id),
    owner_column=col(Order.account_id),
    counter=col(Account.orders_count),
    owner_id=col(Account.id),
)


async def count_orders(session: AsyncSession, account_id: int) -> tuple[int, int | None]:
    """(number of orders, highest order id), both as of one snapshot."""
    return await _ORDER_LINES.count(session, account_id)


async def orders_window(session: AsyncSession, account_id: int, window: PageWindow) -> list[OrderLine]:
    """The window's orders, oldest first: the columns of a list line, not whole entities."""
    return await _ORDER_LINES.window(session, account_id, window)


@dataclass(frozen=True, slots=True)
class OrderFilters:
    status: str | None = None
    email: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


async def get_order(session: AsyncSession, account_id: int, public_id: str) -> Order | None:
    stmt = sa.select(Order).where(col(Order.account_id) == account_id, col(Order.public_id) == public_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def orders_page(
    session: AsyncSession, account_id: int, filters: OrderFilters, request: CursorRequest
) -> tuple[list[Order], bool]:
    stmt = sa.select(Order).where(owned_by(col(Order.account_id), account_id))
    if filters.status is not None:
        stmt = stmt.where(col(Order.status) == filters.status)
    if filters.email is not None:
        stmt = stmt.where(sa.func.lower(col(Order.email)) == filters.email.lower())
    if filters.created_gte is not None:
        stmt = stmt.where(col(Order.created_at) >= filters.created_gte)
    if filters.created_lt is not None:
        stmt = stmt.where(col(Order.created_at) < filters.created_lt)
    rows, has_more = await fetch_cursor_page(session, stmt, col(Order.id), request, owner_column=col(Order.account_id))
    return [row[0] for row in rows], has_more


async def claim_idempotency_key(session: AsyncSession, account_id: int, key: str, fingerprint: bytes) -> bool:
    """True when this transaction now owns the key. A concurrent transaction holding an
    uncommitted claim makes this wait until it commits (then False) or rolls back (then True)."""
    stmt = (
        pg_insert(IdempotencyKey)
        .values(account_id=account_id, key=key, fingerprint=fingerprint)
        .on_conflict_do_nothing(index_elements=["account_id", "key"])
        .returning(col(IdempotencyKey.key))
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def get_idempotency_key(session: AsyncSession, account_id: int, key: str) -> IdempotencyKey:
    return await session.get_one(IdempotencyKey, (account_id, key))


async def complete_idempotency_key(
    session: AsyncSession, account_id: int, key: str, order_id: int, snapshot: dict[str, Any]
) -> None:
    stmt = (
        sa.update(IdempotencyKey)
        .where(col(IdempotencyKey.account_id) == account_id, col(IdempotencyKey.key) == key)
        .values(order_id=order_id, snapshot=snapshot)
    )
    await session.execute(stmt)


async def lock_order(session: AsyncSession, account_id: int, public_id: str) -> Order | None:
    """The account's order, locked until the transaction ends: transitions of one order are
    serialised, so each happens once."""
    stmt = (
        sa.select(Order).where(col(Order.account_id) == account_id, col(Order.public_id) == public_id).with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_status(
    session: AsyncSession, order: Order, to_status: str, reason: str, *, cancel_requested_at: datetime | None = None
) -> None:
    """Move the order and record the transition in its history, in the caller's transaction.
    Only `lifecycle.transition` calls this (it checks the transition first); an ending is
    `end_order`."""
    assert order.id is not None
    from_status = order.status
    values: dict[str, Any] = {"status": to_status}
    if cancel_requested_at is not None:
        values["cancel_requested_at"] = cancel_requested_at
    await session.execute(sa.update(Order).where(col(Order.id) == order.id).values(**values))
    session.add(OrderEvent(order_id=order.id, from_status=from_status, to_status=to_status, reason=reason))
    await session.flush()
    await session.refresh(order)


async def end_order(session: AsyncSession, order: Order, to_status: str, reason: str) -> int:
    """`ordersvc_end_order`: the order ends (its status, the transition in its history, and the
    refund of its undelivered share through the ledger); returns the refund in mills. Only
    `lifecycle.transition` calls this. The order object is reloaded, and an account loaded in
    the session forgets its balance and counters, which the database moved."""
    assert order.id is not None
    stmt = sa.text("SELECT ordersvc_end_order(:order_id, :to_status, :reason)").bindparams(
        order_id=order.id, to_status=to_status, reason=reason
    )
    refund: int = (await session.execute(stmt)).scalar_one()
    await session.refresh(order)
    loaded = session.identity_map.get(sa.orm.util.identity_key(Account, order.account_id))
    if loaded is not None:
        session.expire(loaded, ["balance_mills", "payments_count", "orders_count"])
    return refund


async def events_of(session: AsyncSession, order_id: int) -> list[OrderEvent]:
    stmt = sa.select(OrderEvent).where(col(OrderEvent.order_id) == order_id).order_by(col(OrderEvent.id))
    return list((await session.execute(stmt)).scalars().all())


async def orders_by_public_ids(session: AsyncSession, account_id: int, public_ids: list[str]) -> dict[str, Order]:
    stmt = sa.select(Order).where(col(Order.account_id) == account_id, col(Order.public_id).in_(public_ids))
    return {order.public_id: order for order in (await session.execute(stmt)).scalars().all()}
