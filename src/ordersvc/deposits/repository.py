from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.deposits.models import BonusTier, Deposit, DepositAddress, DepositStatus
from ordersvc.pagination import CursorRequest, fetch_cursor_page


async def import_addresses(session: AsyncSession, network: str, addresses: list[str]) -> int:
    """Add addresses to the pool; ones already there are skipped. Returns how many were added."""
    if not addresses:
        return 0
    stmt = (
        pg_insert(DepositAddress)
        .values([{"network": network, "address": address} for address in addresses])
        .on_conflict_do_nothing(constraint="uq_deposit_addresses_network_address")
        .returning(col(DepositAddress.id))
    )
    return len((await session.execute(stmt)).all())


async def address_of(session: AsyncSession, account_id: int, network: str) -> DepositAddress | None:
    stmt = sa.select(DepositAddress).where(
        col(DepositAddress.account_id) == account_id, col(DepositAddress.network) == network
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def addresses_of(session: AsyncSession, account_id: int) -> list[DepositAddress]:
    stmt = (
        sa.select(DepositAddress)
        .where(col(DepositAddress.account_id) == account_id)
        .order_by(col(DepositAddress.network))
    )
    return list((await session.execute(stmt)).scalars().all())


async def assign_free_address(
    session: AsyncSession, account_id: int, network: str, at: datetime
) -> DepositAddress | None:
    """Take the oldest free address of the network; SKIP LOCKED lets concurrent assignments to
    different accounts take different addresses without waiting on each other."""
    free = (
        sa.select(col(DepositAddress.id))
        .where(col(DepositAddress.network) == network, col(DepositAddress.account_id).is_(None))
        .order_by(col(DepositAddress.id))
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        sa.update(DepositAddress)
        .where(col(DepositAddress.id) == free)
        .values(account_id=account_id, assigned_at=at)
        .returning(DepositAddress)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def free_address_count(session: AsyncSession, network: str) -> int:
    stmt = sa.select(sa.func.count()).where(
        col(DepositAddress.network) == network, col(DepositAddress.account_id).is_(None)
    )
    return (await session.execute(stmt)).scalar_one()


async def owner_of_address(session: AsyncSession, network: str, address: str) -> int | None:
    stmt = sa.select(col(DepositAddress.account_id)).where(
        col(DepositAddress.network) == network, col(DepositAddress.address) == address
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def insert_deposit(session: AsyncSession, values: dict[str, Any]) -> Deposit | None:
    """Record the event unless (processor, external id) is already recorded (then None).

    A concurrent delivery of the same event waits here for the first to commit, then gets None:
    this unique constraint is what makes crediting exactly-once."""
    stmt = (
        pg_insert(Deposit)
        .values(**values)
        # No conflict target: a clash on (processor, external id) or on the on-chain identity
        # (network, tx hash, address: one transfer reported by two processors) is a duplicate.
        .on_conflict_do_nothing()
        .returning(Deposit)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def deposit_exists(session: AsyncSession, processor: str, external_id: str) -> bool:
    stmt = sa.select(col(Deposit.id)).where(
        col(Deposit.processor) == processor, col(Deposit.external_id) == external_id
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def recorded_amount(session: AsyncSession, processor: str, external_id: str) -> int | None:
    stmt = sa.select(col(Deposit.amount_mills)).where(
        col(Deposit.processor) == processor, col(Deposit.external_id) == external_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_deposit_for_update(session: AsyncSession, deposit_id: int) -> Deposit | None:
    stmt = sa.select(Deposit).where(col(Deposit.id) == deposit_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def unmatched_deposits(session: AsyncSession) -> list[Deposit]:
    stmt = sa.select(Deposit).where(col(Deposit.status) == DepositStatus.UNMATCHED.value).order_by(col(Deposit.id))
    return list((await session.execute(stmt)).scalars().all())


async def deposits_page(session: AsyncSession, account_id: int, request: CursorRequest) -> tuple[list[Deposit], bool]:
    stmt = sa.select(Deposit).where(
        col(Deposit.account_id) == account_id, col(Deposit.status) == DepositStatus.CREDITED.value
    )
    rows, has_more = await fetch_cursor_page(session, stmt, col(Deposit.id), request)
    return [row[0] for row in rows], has_more


async def deposit_of_account_exists(session: AsyncSession, account_id: int, deposit_id: int) -> bool:
    stmt = sa.select(col(Deposit.id)).where(col(Deposit.id) == deposit_id, col(Deposit.account_id) == account_id)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def list_tiers(session: AsyncSession) -> list[BonusTier]:
    stmt = sa.select(BonusTier).order_by(col(BonusTier.threshold_mills))
    return list((await session.execute(stmt)).scalars().all())


async def upsert_tier(session: AsyncSession, threshold_mills: int, basis_points: int) -> BonusTier:
    insert = pg_insert(BonusTier).values(threshold_mills=threshold_mills, basis_points=basis_points)
    stmt = insert.on_conflict_do_update(
        index_elements=["threshold_mills"], set_={"basis_points": insert.excluded.basis_points}
    ).returning(BonusTier)
    tier: BonusTier = (await session.execute(stmt)).scalar_one()
    return tier


async def delete_tier(session: AsyncSession, threshold_mills: int) -> bool:
    stmt = sa.delete(BonusTier).where(col(BonusTier.threshold_mills) == threshold_mills).returning(col(BonusTier.id))
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def best_tier_for(session: AsyncSession, amount_mills: int) -> BonusTier | None:
    """The highest tier whose threshold the amount reaches."""
    stmt = (
        sa.select(BonusTier)
        .where(col(BonusTier.threshold_mills) <= amount_mills)
        .order_by(col(BonusTier.threshold_mills).desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def mark_credited(
    session: AsyncSession, deposit_id: int, account_id: int, bonus_mills: int, at: datetime
) -> None:
    stmt = (
        sa.update(Deposit)
        .where(col(Deposit.id) == deposit_id)
        .values(account_id=account_id, bonus_mills=bonus_mills, status=DepositStatus.CREDITED.value, credited_at=at)
    )
    await session.execute(stmt)
