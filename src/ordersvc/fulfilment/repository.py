from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.accounts.models import Account
from ordersvc.fulfilment.models import Worker
from ordersvc.orders.models import Order, OrderStatus


async def insert_worker(session: AsyncSession, name: str, prefix: str, token_hash: bytes) -> Worker | None:
    stmt = (
        pg_insert(Worker)
        .values(name=name, prefix=prefix, token_hash=token_hash)
        .on_conflict_do_nothing()
        .returning(Worker)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_worker_by_prefix(session: AsyncSession, prefix: str) -> Worker | None:
    stmt = sa.select(Worker).where(col(Worker.prefix) == prefix, col(Worker.revoked_at).is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def revoke_worker(session: AsyncSession, name: str, at: datetime) -> bool:
    stmt = (
        sa.update(Worker)
        .where(col(Worker.name) == name, col(Worker.revoked_at).is_(None))
        .values(revoked_at=at)
        .returning(col(Worker.id))
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def list_workers(session: AsyncSession) -> list[Worker]:
    return list((await session.execute(sa.select(Worker).order_by(col(Worker.id)))).scalars().all())


async def claim(session: AsyncSession, now: datetime, limit: int) -> list[Order]:
    """Pending orders, and orders in progress whose lease ran out, oldest first, locked with
    SKIP LOCKED: two workers claiming at once never get the same order."""
    claimable = sa.or_(
        col(Order.status) == OrderStatus.PENDING.value,
        sa.and_(col(Order.status) == OrderStatus.IN_PROGRESS.value, col(Order.lease_until) < now),
    )
    # A disabled account's orders wait (they are claimable again once it is enabled).
    enabled = sa.select(col(Account.id)).where(
        col(Account.id) == col(Order.account_id), col(Account.disabled_at).is_(None)
    )
    stmt = (
        sa.select(Order)
        .where(claimable, enabled.exists())
        .order_by(col(Order.id))
        .limit(limit)
        .with_for_update(of=Order, skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars().all())


async def lock_order(session: AsyncSession, public_id: str) -> Order | None:
    stmt = sa.select(Order).where(col(Order.public_id) == public_id).with_for_update()
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()


async def update_order(session: AsyncSession, order_id: int, **values: Any) -> None:
    await session.execute(sa.update(Order).where(col(Order.id) == order_id).values(**values))
