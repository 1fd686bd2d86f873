from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.accounts.models import Account
from ordersvc.deposits.models import (
    BonusTier,
    Deposit,
    DepositAddress,
    DepositAddressRelease,
    DepositHashCollision,
    DepositStatus,
)
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


def _assignable(network: str, released_before: datetime) -> list[sa.ColumnElement[bool]]:
    """Free, and never released or released before `released_before` (see `addresses`)."""
    return [
        col(DepositAddress.network) == network,
        col(DepositAddress.account_id).is_(None),
        sa.or_(col(DepositAddress.released_at).is_(None), col(DepositAddress.released_at) < released_before),
    ]


async def assign_free_address(
    session: AsyncSession, account_id: int, network: str, at: datetime, *, released_before: datetime
) -> DepositAddress | None:
    """Take a free address of the network: never-used ones first (oldest first), then recycled
    ones released before `released_before`, the longest released first (see `addresses`). SKIP
    LOCKED lets concurrent assignments to different accounts take different addresses without
    waiting on each other, and skips an address a deposit is being recorded on."""
    free = (
        sa.select(col(DepositAddress.id))
        .where(*_assignable(network, released_before))
        .order_by(col(DepositAddress.released_at).asc().nulls_first(), col(DepositAddress.id))
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


async def lock_account_verified(session: AsyncSession, account_id: int) -> bool:
    """Lock the account row (as `accounts.repository.lock_account` does) and say whether its
    email is verified. Read here, not from the authenticated account, which is a snapshot of a
    few columns only."""
    stmt = (
        sa.select(col(Account.email_verified_at).is_not(None))
        .where(col(Account.id) == account_id)
        .with_for_update(key_share=True)
    )
    return bool((await session.execute(stmt)).scalar_one_or_none())


async def free_address_count(session: AsyncSession, network: str, *, released_before: datetime) -> int:
    """The addresses `assign_free_address` could take now."""
    stmt = sa.select(sa.func.count()).where(*_assignable(network, released_before))
    return (await session.execute(stmt)).scalar_one()


async def owner_of_address(session: AsyncSession, network: str, address: str) -> int | None:
    """The address's holder, its row locked (shared) until the transaction ends: recycling
    skips it meanwhile, and a release that committed first is seen (then: no holder)."""
    stmt = (
        sa.select(col(DepositAddress.account_id))
        .where(col(DepositAddress.network) == network, col(DepositAddress.address) == address)
        .with_for_update(read=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def _never_paid() -> sa.ColumnElement[bool]:
    """The address row has received no deposit (what makes it recyclable)."""
    return ~sa.exists().where(
        col(Deposit.network) == col(DepositAddress.network), col(Deposit.address) == col(DepositAddress.address)
    )


async def release_unused_addresses(
    session: AsyncSession, *, assigned_before: datetime, at: datetime
) -> list[DepositAddressRelease]:
    """Release the addresses assigned before `assigned_before` that no deposit reached, and
    record each release. Two statements on purpose: the first locks the candidates (skipping
    rows a deposit in flight holds); the second, with a snapshot taken after those locks, checks
    again that no deposit reached them, so a deposit committed in between keeps its address."""
    never_paid = _never_paid()
    candidates = (
        sa.select(col(DepositAddress.id))
        .where(
            col(DepositAddress.account_id).is_not(None),
            col(DepositAddress.assigned_at) < assigned_before,
            never_paid,
        )
        .order_by(col(DepositAddress.id))
        .with_for_update(skip_locked=True)
    )
    locked = list((await session.execute(candidates)).scalars().all())
    if not locked:
        return []
    held = (
        sa.select(col(DepositAddress.id), col(DepositAddress.account_id), col(DepositAddress.assigned_at))
        .where(col(DepositAddress.id).in_(locked), never_paid)
        .cte("held")
    )
    released = (
        sa.update(DepositAddress)
        .where(col(DepositAddress.id) == held.c.id)
        .values(account_id=None, assigned_at=None, released_at=at)
        .returning(col(DepositAddress.network), col(DepositAddress.address), held.c.account_id, held.c.assigned_at)
        .cte("released")
    )
    record = (
        pg_insert(DepositAddressRelease)
        .from_select(
            ["network", "address", "account_id", "assigned_at", "released_at"],
            sa.select(
                released.c.network, released.c.address, released.c.account_id, released.c.assigned_at, sa.literal(at)
            ),
        )
        .returning(DepositAddressRelease)
    )
    return list((await session.execute(record)).scalars().all())


async def former_holder(session: AsyncSession, network: str, address: str) -> DepositAddressRelease | None:
    """The last account recycling took this address back from, if any."""
    stmt = (
        sa.select(DepositAddressRelease)
        .where(col(DepositAddressRelease.network) == network, col(DepositAddressRelease.address) == address)
        .order_by(col(DepositAddressRelease.id).desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def pool_counts(session: AsyncSession, *, assigned_before: datetime) -> dict[str, tuple[int, int, int]]:
    """Per network: (free, assigned, assigned before `assigned_before` with no deposit yet)."""
    never_paid = _never_paid()
    assigned = col(DepositAddress.account_id).is_not(None)
    stmt = sa.select(
        col(DepositAddress.network),
        sa.func.count().filter(col(DepositAddress.account_id).is_(None)),
        sa.func.count().filter(assigned),
        sa.func.count().filter(assigned, col(DepositAddress.assigned_at) < assigned_before, never_paid),
    ).group_by(col(DepositAddress.network))
    rows = (await session.execute(stmt)).all()
    return {network: (free, taken, recyclable) for network, free, taken, recyclable in rows}


async def credited_same_transfer(
    session: AsyncSession, *, deposit_id: int, network: str, tx_hash: str, hex_digits: str | None, address: str
) -> int | None:
    """Another credited deposit of this on-chain transfer: the network, the hash (by its hex
    digits, whatever their case and `0x`, when it has them; else as written), the address
    compared without case. For the operator's `deposits assign` only: it reads the network's
    deposits without an index on these expressions."""
    stored = col(Deposit.tx_hash)
    same_hash = (
        sa.func.lower(sa.func.regexp_replace(stored, "^0[xX]", "")) == hex_digits
        if hex_digits is not None
        else stored == tx_hash
    )
    stmt = (
        sa.select(col(Deposit.id))
        .where(
            col(Deposit.id) != deposit_id,
            col(Deposit.status) == DepositStatus.CREDITED.value,
            col(Deposit.network) == network,
            same_hash,
            sa.func.lower(col(Deposit.address)) == address.lower(),
        )
        .limit(1)
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


async def hash_collisions(session: AsyncSession) -> list[tuple[str, Deposit]]:
    stmt = (
        sa.select(col(DepositHashCollision.canonical_tx_hash), Deposit)
        .join(Deposit, col(Deposit.id) == col(DepositHashCollision.deposit_id))
        .order_by(col(DepositHashCollision.canonical_tx_hash), col(Deposit.id))
    )
    return [(canonical, deposit) for canonical, deposit in (await session.execute(stmt)).all()]


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
