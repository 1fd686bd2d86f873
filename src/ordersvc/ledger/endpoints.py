"""REST: balance and payments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ordersvc.accounts.auth import UNAUTHORIZED_DETAIL, AccountDep, CredentialsDep, caller_of
from ordersvc.csv_export import EXPORT_ERRORS, ExportSlotDep, csv_response
from ordersvc.errors import InvalidApiKey
from ordersvc.ledger import service as ledger
from ordersvc.ledger.models import PaymentKind
from ordersvc.ledger.schemas import BalanceOut, PaymentList, PaymentOut
from ordersvc.money import format_usd
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.pagination import DEFAULT_LIMIT, LIST_ERRORS, MAX_ID, MAX_PER_PAGE
from ordersvc.problems import problem_responses

router = APIRouter(prefix="/v1", route_class=GuardedRoute)


@router.get(
    "/balance",
    operation_id="balance_get",
    tags=["payments"],
    summary="Get your balance",
)
async def balance_get(request: Request, credentials: CredentialsDep) -> BalanceOut:
    """The current balance: the sum of every payment of the account."""
    caller = await caller_of(request, credentials)
    try:
        mills = await ledger.balance_of(request.app.state.engine, caller=caller)
    except InvalidApiKey:
        raise InvalidApiKey(UNAUTHORIZED_DETAIL) from None
    return BalanceOut(balance=format_usd(mills))


@router.get(
    "/payments",
    operation_id="payments_list",
    tags=["payments"],
    summary="List your payments",
    responses=problem_responses(*LIST_ERRORS),
)
async def payments_list(
    request: Request,
    credentials: CredentialsDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Page size.")] = DEFAULT_LIMIT,
    starting_after: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="A payment id: return older payments than it (the next page).")
    ] = None,
    ending_before: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="A payment id: return newer payments than it (the previous page)."),
    ] = None,
    kind: Annotated[PaymentKind | None, Query(description="Only payments of this kind.")] = None,
) -> PaymentList:
    """The ledger of the account, newest first: every change of its balance, one signed
    payment each. Page with `starting_after` (the last id of a page) or `ending_before` (the
    first id of a page) and `has_more`."""
    caller = await caller_of(request, credentials)
    try:
        page = await ledger.page_payments(
            request.app.state.engine,
            caller=caller,
            kind=kind,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
        )
    except InvalidApiKey:
        raise InvalidApiKey(UNAUTHORIZED_DETAIL) from None
    return PaymentList(data=[PaymentOut.of(entry) for entry in page.items], has_more=page.has_more)


@router.get(
    "/payments/export",
    operation_id="payments_export",
    tags=["payments"],
    summary="Export your payments (CSV)",
    response_class=StreamingResponse,
    responses={
        200: {"description": "Every payment, newest first.", "content": {"text/csv": {}}},
        **problem_responses(*EXPORT_ERRORS),
    },
)
async def payments_export(request: Request, slot: ExportSlotDep, account: AccountDep) -> StreamingResponse:
    """Your whole ledger as CSV (`id,kind,amount,order_id,email,coupon,description,created`),
    newest first, streamed from one consistent snapshot: the amounts sum to your balance."""
    assert account.id is not None
    account_id = account.id
    return csv_response(
        request, slot, f"account:{account_id}", "payments.csv",
        ["id", "kind", "amount", "order_id", "email", "coupon", "description", "created"],
        lambda session: ledger.export_payments(session, account_id=account_id),
        lambda r: [r.id, r.kind, format_usd(r.amount_mills), r.order_public_id, r.email, r.coupon, r.description,
                   r.created_at],
    )  # fmt: skip
