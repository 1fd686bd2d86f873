"""REST: deposit addresses, deposits, bonus tiers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from ordersvc.accounts.auth import AccountDep
from ordersvc.config import Settings
from ordersvc.csv_export import EXPORT_ERRORS, ExportSlotDep, csv_response
from ordersvc.deposits import addresses
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
from ordersvc.money import format_usd
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.pagination import DEFAULT_LIMIT, LIST_ERRORS, MAX_ID, MAX_PER_PAGE
from ordersvc.problems import problem_responses
from ordersvc.request_db import SessionDep

router = APIRouter(prefix="/v1", route_class=GuardedRoute)


@router.get(
    "/deposit-addresses",
    operation_id="deposit_addresses_list",
    tags=["deposits"],
    summary="List your deposit addresses",
)
async def deposit_addresses_list(account: AccountDep, session: SessionDep) -> DepositAddressList:
    """The addresses assigned to your account, one per network. Ask for one on a new network
    with `POST /v1/deposit-addresses/{network}`."""
    assert account.id is not None
    found = await addresses.list_deposit_addresses(session, account_id=account.id)
    return DepositAddressList(data=[DepositAddressOut.of(a) for a in found])


@router.get(
    "/deposit-addresses/{network}",
    operation_id="deposit_addresses_get",
    tags=["deposits"],
    summary="Get your deposit address on a network",
    responses=problem_responses(addresses.NoAddressAssigned),
)
async def deposit_addresses_get(network: Network, account: AccountDep, session: SessionDep) -> DepositAddressOut:
    """Your address on this network. Reading assigns nothing: 404 `no_deposit_address` until
    you ask for one with `POST /v1/deposit-addresses/{network}`."""
    assert account.id is not None
    return DepositAddressOut.of(await addresses.deposit_address(session, account_id=account.id, network=network))


@router.post(
    "/deposit-addresses/{network}",
    operation_id="deposit_addresses_assign",
    tags=["deposits"],
    summary="Get an address on a network assigned to you",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": DepositAddressOut, "description": "You had one already: the same address."},
        **problem_responses(addresses.EmailNotVerified, addresses.NoAddressAvailable),
    },
)
async def deposit_addresses_assign(
    network: Network, account: AccountDep, session: SessionDep, request: Request, response: Response
) -> DepositAddressOut:
    """Assign your address on this network from the pool (201), or return the one you have
    (200): ask as often as you like, you keep one address per network, so a retry needs no
    Idempotency-Key (and takes none: a stored answer could name an address recycled since).
    Deposits to it are credited once final. Addresses are for verified accounts only (403
    `email_not_verified`); 409 `no_address_available` when the network's pool is empty for the
    moment. An address that has received no deposit within the operator's recycle period (30
    days unless set otherwise) goes back to the pool, and rests there as long before it is
    handed out again: ask again before sending funds to an address you got long ago and never
    used."""
    assert account.id is not None
    settings: Settings = request.app.state.settings
    address, assigned_now = await addresses.assign_deposit_address(
        session,
        account_id=account.id,
        network=network,
        low_water=settings.deposit_pool_low_water,
        recycle_days=settings.deposit_address_recycle_days,
    )
    if not assigned_now:
        response.status_code = status.HTTP_200_OK
    return DepositAddressOut.of(address)


@router.get(
    "/deposits",
    operation_id="deposits_list",
    tags=["deposits"],
    summary="List your deposits",
    responses=problem_responses(*LIST_ERRORS),
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
    "/deposits/export",
    operation_id="deposits_export",
    tags=["deposits"],
    summary="Export your deposits (CSV)",
    response_class=StreamingResponse,
    responses={
        200: {"description": "Every credited deposit, newest first.", "content": {"text/csv": {}}},
        **problem_responses(*EXPORT_ERRORS),
    },
)
async def deposits_export(request: Request, slot: ExportSlotDep, account: AccountDep) -> StreamingResponse:
    """Your credited deposits as CSV (`id,network,amount,bonus,tx_hash,address,credited`),
    newest first, streamed."""
    assert account.id is not None
    account_id = account.id
    return csv_response(
        request, slot, f"account:{account_id}", "deposits.csv",
        ["id", "network", "amount", "bonus", "tx_hash", "address", "credited"],
        lambda session: deposits.export_deposits(session, account_id=account_id),
        lambda d: [d.id, d.network, format_usd(d.amount_mills), format_usd(d.bonus_mills), d.tx_hash, d.address,
                   d.credited_at],
    )  # fmt: skip


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
