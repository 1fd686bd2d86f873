from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.orders.models import Order
from ordersvc.pagination import PageWindow, count_up_to_now, fetch_window


async def insert_order(
    session: AsyncSession, *, public_id: str, account_id: int, email: str, quantity: int, price_mills: int
) -> Order | None:
    """Insert the order unless its public id is taken (then None, and the transaction stays
    usable, so the caller can retry with another id)."""
    stmt = (
        pg_insert(Order)
        .values(public_id=public_id, account_id=account_id, email=email, quantity=quantity, price_mills=price_mills)
        .on_conflict_do_nothing(index_elements=["public_id"])
        .returning(Order)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def count_orders(session: AsyncSession, account_id: int) -> tuple[int, int | None]:
    return await count_up_to_now(session, col(Order.id), col(Order.account_id) == account_id)


async def orders_window(session: AsyncSession, account_id: int, window: PageWindow) -> list[Order]:
    """The window's orders, oldest first."""
    stmt = sa.select(Order).where(col(Order.account_id) == account_id)
    return [row[0] for row in await fetch_window(session, stmt, col(Order.id), window)]
