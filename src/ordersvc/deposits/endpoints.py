"""REST: deposit addresses, deposits, bonus tiers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ordersvc.accounts.auth import AccountDep
from ordersvc.db import SessionDep
from ordersvc.deposits import service as deposits
from ordersvc.deposits.models import Network
from ordersvc.deposits.schemas import (
    BonusTierList,
    BonusTierOut,
    DepositAddressList,
    DepositAddressOut,
    DepositList,
    DepositOut,
)
from ordersvc.pagination import DEFAULT_LIMIT, MAX_ID, MAX_PER_PAGE
from ordersvc.problems import problem_responses

router = APIRouter(prefix="/v1")


@router.get(
    "/deposit-addresses",
    operation_id="deposit_addresses_list",
    tags=["deposits"],
    summary="List your deposit addresses",
    responses=problem_responses(),
)
async def deposit_addresses_list(account: AccountDep, session: SessionDep) -> DepositAddressList:
    """The addresses assigned to your account so far, one per network. Get one for a new
    network with `GET /v1/deposit-addresses/{network}`."""
    assert account.id is not None
    addresses = await deposits.list_deposit_addresses(session, account_id=account.id)
    return DepositAddressList(data=[DepositAddressOut.of(a) for a in addresses])


@router.get(
    "/deposit-addresses/{network}",
    operation_id="deposit_addresses_get",
    tags=["deposits"],
    summary="Get your deposit address on a network",
    responses=problem_responses(409),
)
async def deposit_addresses_get(network: Network, account: AccountDep, session: SessionDep) -> DepositAddressOut:
    """Your address on this network: assigned on the first request, the same ever after.
    Deposits to it are credited once final. 409 `no_address_available` when the network's
    pool is empty for the moment."""
    assert account.id is not None
    return DepositAddressOut.of(await deposits.deposit_address(session, account_id=account.id, network=network))


@router.get(
    "/deposits",
    operation_id="deposits_list",
    tags=["deposits"],
    summary="List your deposits",
    responses=problem_responses(),
)
async def deposits_list(
    account: AccountDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Page size.")] = DEFAULT_LIMIT,
    starting_after: Annotated[int | None, Query(ge=1, le=MAX_ID, description="A deposit id: older ones.")] = None,
    ending_before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="A deposit id: newer ones.")] = None,
) -> DepositList:
    """Your credited deposits, newest first: network, amount, tx hash and the bonus earned.
    Each is also a `deposit` payment (and a `bonus` payment) in `GET /v1/payments`."""
    assert account.id is not None
    page = await deposits.page_deposits(
        session, account_id=account.id, limit=limit, starting_after=starting_after, ending_before=ending_before
    )
    return DepositList(data=[DepositOut.of(d) for d in page.items], has_more=page.has_more)


@router.get(
    "/bonus-tiers",
    operation_id="bonus_tiers_list",
    tags=["deposits"],
    summary="List the deposit bonus tiers",
    openapi_extra={"security": []},
)
async def bonus_tiers_list(session: SessionDep) -> BonusTierList:
    """Public, no key needed: a deposit of at least a tier's threshold earns its percentage
    as a bonus (the highest tier reached applies; rounded down to 0.001 USD)."""
    return BonusTierList(data=[BonusTierOut.of(t) for t in await deposits.list_bonus_tiers(session)])
