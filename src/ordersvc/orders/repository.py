from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from ordersvc.accounts.callers import Caller
from ordersvc.accounts.models import Account
from ordersvc.accounts.repository import CALLER_ACCOUNT, CALLER_PARAMETERS, Reader, fetch_as
from ordersvc.orders.models import Order, OrderEvent
from ordersvc.pagination import CursorList, CursorPage, CursorRequest, NumberedList, NumberedPage, PageRequest


class OrderLine(NamedTuple):
    """An order as the legacy list shows it."""

    public_id: str
    email: str
    created_at: datetime | None
    price_mills: int
    status: str
    progress: int


_ORDER_LINES: NumberedList[OrderLine] = NumberedList(
    item=OrderLine._make,
    table="orders x",
    columns=("x.public_id", "x.email", "x.created_at", "x.price_mills", "x.status", "x.progress"),
    output="r.public_id, r.email, r.created_at, r.price_mills, r.status, r.progress",
    row_id="x.id",
    row_owner="x.account_id",
    counter="orders_count",
    owner=CALLER_ACCOUNT,
    owner_parameters=CALLER_PARAMETERS,
)


async def orders_numbered_page(reader: Reader, caller: Caller, page: PageRequest) -> NumberedPage[OrderLine] | None:
    """A numbered page of the caller's orders, oldest first, in one statement that checks the
    caller: the columns of a list line, not whole entities. None when the key is not valid."""
    rows = await fetch_as(reader, caller, _ORDER_LINES.sql, *_ORDER_LINES.arguments(page))
    return _ORDER_LINES.page_of(rows, page)


@dataclass(frozen=True, slots=True)
class OrderFilters:
    status: str | None = None
    email: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


async def get_order(session: AsyncSession, account_id: int, public_id: str) -> Order | None:
    stmt = sa.select(Order).where(col(Order.account_id) == account_id, col(Order.public_id) == public_id)
    return (await session.execute(stmt)).scalar_one_or_none()


_NEW_ORDER_COLUMNS = (
    "id",
    "public_id",
    "account_id",
    "email",
    "quantity",
    "price_mills",
    "status",
    "progress",
    "created_at",
)
"""An order's columns in the order of `service.NewOrder`'s fields."""

_ORDER_PAGES: CursorList[int, str, int, str, int, int, str, int, datetime] = CursorList(
    table="orders x",
    columns=[f"x.{name}" for name in _NEW_ORDER_COLUMNS],
    output=", ".join(f"r.{name}" for name in _NEW_ORDER_COLUMNS),
    row_id="x.id",
    row_owner="x.account_id",
    cursor_row="(SELECT c.id FROM orders c WHERE c.account_id = {owner} AND c.public_id = {cursor})",
    cursor_type="text",
    owner=CALLER_ACCOUNT,
    owner_parameters=CALLER_PARAMETERS,
    filters=(
        ("x.status = {}", "text"),
        ("lower(x.email) = {}", "text"),  # the address lowered by Python, as before
        ("x.created_at >= {}", "timestamptz"),
        ("x.created_at < {}", "timestamptz"),
    ),
)


async def orders_page(
    engine: AsyncEngine, caller: Caller, filters: OrderFilters, request: CursorRequest
) -> CursorPage[tuple[int, str, int, str, int, int, str, int, datetime]] | None:
    """A cursor page of the caller's orders, newest first, in one statement that checks the
    caller and finds the cursors (public ids) among its orders: rows of `_NEW_ORDER_COLUMNS`.
    None when the key is not valid."""
    email = None if filters.email is None else filters.email.lower()
    sql, arguments = _ORDER_PAGES.statement(request, filters.status, email, filters.created_gte, filters.created_lt)
    return _ORDER_PAGES.page_of(await fetch_as(engine, caller, sql, *arguments), request)


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


async def orders_with_charges(
    session: AsyncSession, account_id: int, public_ids: list[str], endings: list[str]
) -> dict[str, tuple[Order, int]]:
    """The account's orders among these ids, each with what it cost: its price, less the refund
    of its undelivered share (`ordersvc_order_refund`) once it is in one of `endings`."""
    refund = sa.func.ordersvc_order_refund(col(Order.price_mills), col(Order.quantity), col(Order.delivered))
    charged = col(Order.price_mills) - sa.case((col(Order.status).in_(endings), refund), else_=0)
    stmt = sa.select(Order, charged).where(col(Order.account_id) == account_id, col(Order.public_id).in_(public_ids))
    return {order.public_id: (order, int(mills)) for order, mills in (await session.execute(stmt)).all()}


async def orders_by_ids(session: AsyncSession, order_ids: list[int]) -> dict[int, Order]:
    if not order_ids:
        return {}
    found = await session.execute(sa.select(Order).where(col(Order.id).in_(order_ids)))
    return {order.id: order for order in found.scalars() if order.id is not None}
