from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.coupons.models import Coupon, CouponRedemption


async def insert_coupon(
    session: AsyncSession, *, code: str, amount_mills: int, max_redemptions: int | None, expires_at: datetime | None
) -> Coupon | None:
    stmt = (
        pg_insert(Coupon)
        .values(code=code, amount_mills=amount_mills, max_redemptions=max_redemptions, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["code"])
        .returning(Coupon)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_coupon(session: AsyncSession, code: str) -> Coupon | None:
    """The coupon, locked: redemptions of one code are serialised, so its limit holds."""
    stmt = sa.select(Coupon).where(col(Coupon.code) == code).with_for_update(key_share=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def was_redeemed_by(session: AsyncSession, coupon_id: int, account_id: int) -> bool:
    stmt = sa.select(sa.literal(1)).where(
        col(CouponRedemption.coupon_id) == coupon_id, col(CouponRedemption.account_id) == account_id
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def record_redemption(session: AsyncSession, coupon_id: int, account_id: int, payment_id: int) -> None:
    session.add(CouponRedemption(coupon_id=coupon_id, account_id=account_id, payment_id=payment_id))
    await session.execute(
        sa.update(Coupon).where(col(Coupon.id) == coupon_id).values(redemptions=col(Coupon.redemptions) + 1)
    )
    await session.flush()


async def list_coupons(session: AsyncSession) -> list[Coupon]:
    return list((await session.execute(sa.select(Coupon).order_by(col(Coupon.id)))).scalars().all())


async def disable_coupon(session: AsyncSession, code: str, at: datetime) -> Coupon | None:
    stmt = sa.update(Coupon).where(col(Coupon.code) == code).values(disabled_at=at).returning(Coupon)
    return (await session.execute(stmt)).scalar_one_or_none()
