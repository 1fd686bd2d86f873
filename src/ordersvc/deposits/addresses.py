"""The deposit address pool: operator-loaded addresses, assigned to verified accounts when they
ask for one (one per account and network), and recycled when no deposit reached them.

The pool is finite and every address handed out is one fewer for the next customer, so:
- an address is assigned only by an explicit request (`POST`), never by reading (a crawler or a
  page load took one per network before);
- only accounts whose email is verified may take one (operator-created accounts are);
- an address that received no deposit within `deposit_address_recycle_days` of its assignment
  goes back to the pool (`ordersvc deposits recycle`), its former holder recorded.

A deposit can still reach a recycled address (its former holder kept it): the deposit path
reads the owner with the address row locked (`repository.owner_of_address`), so it sees either
the holder before recycling or none, never a half-done release, and a deposit with no holder is
recorded as unmatched for the operator, with the former holder named in the log and in
`ordersvc deposits unmatched`. Recycled addresses are handed out again only after every
never-used one, the longest released first, which keeps that window as long as the pool allows."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.accounts import sessions
from ordersvc.deposits import repository
from ordersvc.deposits.hashes import normalise_address
from ordersvc.deposits.models import DepositAddress, DepositAddressRelease, Network
from ordersvc.errors import Conflict, InvalidParams, NotFound
from ordersvc.timestamps import utc_now

logger = logging.getLogger(__name__)

_ADDRESS = re.compile(r"^[A-Za-z0-9:_.-]{8,200}$")


class NoAddressAvailable(Conflict):
    code = "no_address_available"
    message = "No deposit address is free for this network right now. Please try again later or contact support."


class NoAddressAssigned(NotFound):
    code = "no_deposit_address"
    message = "You have no deposit address on this network yet: ask for one with POST."


class EmailNotVerified(sessions.EmailNotVerified):
    """The accounts' refusal (one code), in the words of this use."""

    message = "Verify your email address first: deposit addresses are assigned to verified accounts only."


class InvalidAddress(InvalidParams):
    code = "invalid_address"
    message = "A deposit address is 8-200 letters, digits or ':_.-'."


class InvalidRecyclePeriod(InvalidParams):
    code = "invalid_recycle_period"
    message = "The recycle period is a whole number of days, at least 1."


async def import_addresses(session: AsyncSession, *, network: Network, addresses: list[str]) -> int:
    """Load addresses into the pool (duplicates skipped); every line must look like an address."""
    cleaned = [normalise_address(network.value, a.strip()) or "" for a in addresses if a.strip()]
    for address in cleaned:
        if _ADDRESS.fullmatch(address) is None:
            raise InvalidAddress(f"Invalid deposit address {address[:60]!r}: 8-200 letters, digits or ':_.-'.")
    return await repository.import_addresses(session, network.value, list(dict.fromkeys(cleaned)))


async def deposit_address(session: AsyncSession, *, account_id: int, network: Network) -> DepositAddress:
    """The account's address on this network; it only reads (404 when none is assigned)."""
    existing = await repository.address_of(session, account_id, network.value)
    if existing is None:
        raise NoAddressAssigned()
    return existing


async def assign_deposit_address(
    session: AsyncSession, *, account_id: int, network: Network, low_water: int, recycle_days: int
) -> tuple[DepositAddress, bool]:
    """The account's address on this network, taken from the pool if it has none yet; and
    whether it was assigned now. Asking again returns the same address.

    A recycled address rests for a recycle period before it is handed out again: a deposit its
    former holder sends late (or one still waiting for its confirmations) then arrives while it
    has no holder, and is kept unmatched naming that holder, never credited to a stranger."""
    now = utc_now()
    rested = now - recycle_cutoff(recycle_days)
    # The account row is locked: one assignment per account at a time.
    verified = await repository.lock_account_verified(session, account_id)
    existing = await repository.address_of(session, account_id, network.value)
    if existing is not None:
        return existing, False
    if not verified:
        raise EmailNotVerified()
    assigned = await repository.assign_free_address(session, account_id, network.value, now, released_before=rested)
    if assigned is None:
        logger.error(
            "DEPOSIT ADDRESS POOL EMPTY for %s: import more with `ordersvc deposits import-addresses`"
            " (or release unused ones with `ordersvc deposits recycle`)", network,
        )  # fmt: skip
        raise NoAddressAvailable()
    free = await repository.free_address_count(session, network.value, released_before=rested)
    if free < low_water:
        logger.warning(
            "deposit address pool for %s is running low: %s free; see `ordersvc deposits pool`", network, free
        )
    return assigned, True


async def list_deposit_addresses(session: AsyncSession, *, account_id: int) -> list[DepositAddress]:
    return await repository.addresses_of(session, account_id)


# Recycling and the operator's view ---------------------------------------------------------


def recycle_cutoff(days: int) -> timedelta:
    if days < 1:
        raise InvalidRecyclePeriod()
    return timedelta(days=days)


async def recycle_unused_addresses(session: AsyncSession, *, days: int) -> list[DepositAddressRelease]:
    """Put back in the pool every address assigned more than `days` ago that never received a
    deposit, and record whose it was. Addresses a deposit is being recorded on right now are
    skipped (their rows are locked) and taken next time, if they still qualify."""
    now = utc_now()
    return await repository.release_unused_addresses(session, assigned_before=now - recycle_cutoff(days), at=now)


@dataclass(frozen=True, slots=True)
class PoolStatus:
    network: Network
    free: int
    assigned: int
    # Assigned, no deposit yet, older than the recycle period: what `deposits recycle` would free.
    recyclable: int


async def pool_status(session: AsyncSession, *, days: int) -> list[PoolStatus]:
    counts = await repository.pool_counts(session, assigned_before=utc_now() - recycle_cutoff(days))
    return [PoolStatus(network, *counts.get(network.value, (0, 0, 0))) for network in Network]
