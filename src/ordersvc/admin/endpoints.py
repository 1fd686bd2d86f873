"""REST for the operator's console: `/v1/admin/...` (tag `admin`). Each route parses, calls one
use case of `admin.service` or `operators.service`, and renders. Only an operator session reaches
these routes (`admin.auth`); what a role may do is decided by the use case."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc import idempotency
from ordersvc.accounts import throttle
from ordersvc.accounts.auth import CsrfFailed
from ordersvc.accounts.passwords import WeakPassword
from ordersvc.accounts.service import AccountNotFound
from ordersvc.accounts.sessions import InvalidTotpCode, csrf_token
from ordersvc.admin import overview
from ordersvc.admin import service as admin
from ordersvc.admin.auth import OPERATOR_COOKIE, OPERATOR_COOKIE_PATH, AnyOperatorSession, OperatorDep
from ordersvc.admin.schemas import (
    AdjustmentIn,
    AdjustmentOut,
    AdminCancellationOut,
    AdminDepositList,
    AdminDepositOut,
    AdminOrderList,
    AdminOrderOut,
    AdminPaymentList,
    AdminPaymentOut,
    AssignIn,
    AuditEntryOut,
    AuditList,
    ConsentList,
    ConsentOut,
    CustomerDetailOut,
    CustomerList,
    CustomerOut,
    OperatorCreate,
    OperatorLinkOut,
    OperatorList,
    OperatorLoginIn,
    OperatorOut,
    OperatorPasswordIn,
    OperatorSessionOut,
    OperatorUpdate,
    OverviewOut,
    TotpCode,
    TotpEnrolmentOut,
)
from ordersvc.audit import service as audit
from ordersvc.audit.service import AuditFilter
from ordersvc.config import Settings
from ordersvc.csv_export import EXPORT_ERRORS, ExportSlotDep, csv_response
from ordersvc.deposits import addresses
from ordersvc.deposits import service as deposits
from ordersvc.deposits.models import Deposit
from ordersvc.emails import InvalidEmail
from ordersvc.keyring import keyring
from ordersvc.ledger import service as ledger
from ordersvc.ledger.service import InsufficientBalance
from ordersvc.money import format_usd, parse_usd
from ordersvc.operators import service as operators
from ordersvc.operators.models import OperatorRole
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.orders.errors import OrderNotFound
from ordersvc.orders.lifecycle import OrderNotCancelable
from ordersvc.orders.schemas import OrderStatus
from ordersvc.pagination import LIST_ERRORS, MAX_ID, CursorRequest
from ordersvc.problems import problem_responses
from ordersvc.request_db import SessionDep
from ordersvc.timestamps import utc_param

router = APIRouter(prefix="/v1/admin", route_class=GuardedRoute, tags=["admin"])

SIGNED_IN = (operators.OperatorSessionEnded, operators.EnrolmentRequired, CsrfFailed)
ROLE = (operators.RoleForbidden,)
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")]
StartingAfter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="An id from the previous page: older items.")]
EndingBefore = Annotated[int | None, Query(ge=1, le=MAX_ID, description="An id: newer items.")]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _secure(settings: Settings) -> bool:
    if settings.session_cookie_secure is not None:
        return settings.session_cookie_secure
    return settings.public_url.startswith("https://")


def _page(limit: int, starting_after: int | str | None, ending_before: int | str | None) -> CursorRequest:
    return CursorRequest(limit=limit, starting_after=starting_after, ending_before=ending_before)


def _session_out(auth: operators.OperatorAuth | operators.NewOperatorSession, csrf: str) -> OperatorSessionOut:
    return OperatorSessionOut(
        operator=OperatorOut.of(auth.operator), stage="signed_in" if auth.enrolled else "enrol_totp", csrf_token=csrf
    )


# Sign-in ---------------------------------------------------------------------------------------


@router.post(
    "/auth/set-password",
    operation_id="admin_set_password",
    summary="Set an operator's password from the one-time link",
    responses=problem_responses(operators.InvalidOperatorLink, WeakPassword),
    openapi_extra={"security": []},
)
async def admin_set_password(body: OperatorPasswordIn, session: SessionDep) -> OperatorOut:
    """The link `ordersvc operators create` (or `reset`) printed carries the token after `#/set-password/`.
    Spent once used; then sign in (the authenticator app is set up at the first sign-in)."""
    return OperatorOut.of(await operators.set_password(session, token=body.token, password=body.password))


@router.post(
    "/auth/login",
    operation_id="admin_login",
    summary="Sign in to the console",
    responses=problem_responses(operators.OperatorSignInFailed, throttle.TooManyAttempts),
    openapi_extra={"security": []},
)
async def admin_login(
    body: OperatorLoginIn, request: Request, response: Response, session: SessionDep
) -> OperatorSessionOut:
    """Email, password and, once set up, the TOTP code. Sets the session cookie
    (`ordersvc_operator`, HttpOnly, SameSite=Strict, path `/v1/admin`). An operator without a
    second factor yet gets a session in stage `enrol_totp`, which reaches only the enrolment.
    A wrong password and a missing or wrong code get the same answer, `operator_sign_in_failed`."""
    settings = _settings(request)
    new = await operators.login(
        session,
        attempts=request.app.state.sessionmaker,
        email=body.email,
        password=body.password,
        totp_code=body.totp_code,
        ip=_ip(request),
        user_agent=request.headers.get("user-agent", ""),
        settings=settings,
        keys=keyring(settings),
    )
    return _signed_in(response, new, settings)


def _signed_in(response: Response, new: operators.NewOperatorSession, settings: Settings) -> OperatorSessionOut:
    """The new session's cookie on the answer, and the session in its body."""
    response.set_cookie(
        OPERATOR_COOKIE,
        new.token,
        max_age=settings.operator_session_hours * 3600,
        path=OPERATOR_COOKIE_PATH,
        secure=_secure(settings),
        httponly=True,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return _session_out(new, new.csrf)


@router.get("/me", operation_id="admin_me", summary="The signed-in operator", responses=problem_responses(*SIGNED_IN))
async def admin_me(request: Request, response: Response, auth: AnyOperatorSession) -> OperatorSessionOut:
    """Who is signed in, the session's stage and its CSRF token (a reloaded page reads it here)."""
    cookie = request.cookies.get(OPERATOR_COOKIE, "")
    response.headers["Cache-Control"] = "no-store"
    return _session_out(auth, csrf_token(keyring(_settings(request)), cookie))


@router.post(
    "/auth/logout",
    operation_id="admin_logout",
    summary="Sign out",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*SIGNED_IN),
)
async def admin_logout(request: Request, auth: AnyOperatorSession, session: SessionDep) -> Response:
    """Ends this operator session now (the cookie is cleared); recorded in the audit log."""
    await operators.logout(session, auth)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        OPERATOR_COOKIE, path=OPERATOR_COOKIE_PATH, secure=_secure(_settings(request)), httponly=True, samesite="strict"
    )
    return response


@router.post(
    "/auth/totp/start",
    operation_id="admin_totp_start",
    summary="Start setting up the authenticator app",
    responses=problem_responses(*SIGNED_IN, operators.AlreadyEnrolled),
)
async def admin_totp_start(
    request: Request, response: Response, auth: AnyOperatorSession, session: SessionDep
) -> TotpEnrolmentOut:
    """A new authenticator secret for an operator who has none yet, as a key and an `otpauth://`
    URI for a QR code; sealed at rest. Confirm it with the app's first code."""
    enrolment = await operators.start_totp(session, auth, keyring(_settings(request)))
    response.headers["Cache-Control"] = "no-store"
    return TotpEnrolmentOut(secret=enrolment.secret, otpauth_uri=enrolment.uri)


@router.post(
    "/auth/totp/confirm",
    operation_id="admin_totp_confirm",
    summary="Confirm the authenticator app with its first code",
    responses=problem_responses(*SIGNED_IN, operators.AlreadyEnrolled, InvalidTotpCode, throttle.TooManyAttempts),
)
async def admin_totp_confirm(
    body: TotpCode, request: Request, response: Response, auth: AnyOperatorSession, session: SessionDep
) -> OperatorSessionOut:
    """The second factor is on from now. The enrolment session ends and a new session cookie,
    signed in, replaces it (with a new `csrf_token`). Wrong codes count against the operator's
    sign-in throttle."""
    settings = _settings(request)
    new = await operators.confirm_totp(
        session,
        auth,
        code=body.code,
        attempts=request.app.state.sessionmaker,
        ip=_ip(request),
        user_agent=request.headers.get("user-agent", ""),
        settings=settings,
        keys=keyring(settings),
    )
    return _signed_in(response, new, settings)


# Overview ----------------------------------------------------------------------------------------


@router.get(
    "/overview",
    operation_id="admin_overview",
    summary="The business at a glance",
    responses=problem_responses(*SIGNED_IN),
)
async def admin_overview(request: Request, who: OperatorDep, session: SessionDep) -> OverviewOut:
    """Balances held (what the service owes its customers), money in and out per day over the
    last 30 days, orders by status, the outbox backlog, live workers and the deposit address pool.
    Its cost does not grow with the ledger (`admin/overview.py`)."""
    pool = await addresses.pool_status(session, days=_settings(request).deposit_address_recycle_days)
    return OverviewOut.of(await overview.overview(session), {s.network.value: s.free for s in pool})


# Customers ---------------------------------------------------------------------------------------

CustomerId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The customer's account id.")]


@router.get(
    "/customers",
    operation_id="admin_customers_list",
    summary="Search customers",
    responses=problem_responses(*SIGNED_IN, *LIST_ERRORS),
)
async def admin_customers_list(
    who: OperatorDep,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=320, description="Part of an email, or an account id.")] = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    ending_before: EndingBefore = None,
) -> CustomerList:
    """Customers whose email contains `q` (any case) or whose id it is, or every customer without
    `q`; newest first, by cursor pages of account ids."""
    page = await admin.search_customers(session, query=q, request=_page(limit, starting_after, ending_before))
    return CustomerList(data=[CustomerOut.of(a) for a in page.items], has_more=page.has_more)


@router.get(
    "/customers/export",
    operation_id="admin_customers_export",
    summary="Export customers (CSV)",
    responses={200: {"content": {"text/csv": {}}}, **problem_responses(*SIGNED_IN, *EXPORT_ERRORS)},
    response_class=StreamingResponse,
)
async def admin_customers_export(
    request: Request, slot: ExportSlotDep, who: OperatorDep, session: SessionDep
) -> StreamingResponse:
    """Every customer as CSV (`id,email,balance,state,orders,payments,created`), streamed from one
    consistent snapshot. Audited."""
    await admin.record_export(session, who.actor, "customers")

    async def rows(session: AsyncSession) -> AsyncIterator[CustomerOut]:
        async for account in admin.stream_customers(session):
            yield CustomerOut.of(account)

    return csv_response(
        request, slot, who.owner, "customers.csv",
        ["id", "email", "balance", "state", "orders", "payments", "created"],
        rows, lambda c: [c.id, c.email, c.balance, c.state, c.orders, c.payments, c.created],
    )  # fmt: skip


@router.get(
    "/customers/{account_id}",
    operation_id="admin_customers_get",
    summary="A customer",
    responses=problem_responses(*SIGNED_IN, admin.CustomerNotFound),
)
async def admin_customers_get(account_id: CustomerId, who: OperatorDep, session: SessionDep) -> CustomerDetailOut:
    """Balance and counts, API keys and live browser sessions."""
    return CustomerDetailOut.of(await admin.customer(session, account_id=account_id))


@router.get(
    "/customers/{account_id}/payments",
    operation_id="admin_customers_payments",
    summary="A customer's payments",
    responses=problem_responses(*SIGNED_IN, admin.CustomerNotFound, *LIST_ERRORS),
)
async def admin_customers_payments(
    account_id: CustomerId,
    who: OperatorDep,
    session: SessionDep,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    ending_before: EndingBefore = None,
) -> AdminPaymentList:
    """The customer's ledger, newest first: every payment with its kind, signed amount and, for
    manual ones, the operator and the reason."""
    page = await admin.customer_payments(
        session, account_id=account_id, request=_page(limit, starting_after, ending_before)
    )
    return AdminPaymentList(data=[AdminPaymentOut.of(p) for p in page.items], has_more=page.has_more)


@router.get(
    "/customers/{account_id}/payments/export",
    operation_id="admin_customers_payments_export",
    summary="Export a customer's payments (CSV)",
    responses={
        200: {"content": {"text/csv": {}}},
        **problem_responses(*SIGNED_IN, admin.CustomerNotFound, *EXPORT_ERRORS),
    },
    response_class=StreamingResponse,
)
async def admin_customers_payments_export(
    request: Request, slot: ExportSlotDep, account_id: CustomerId, who: OperatorDep, session: SessionDep
) -> StreamingResponse:
    """The customer's whole ledger as CSV (`id,kind,amount,order_id,email,coupon,description,operator_id,created`),
    newest first, streamed from one consistent snapshot: the amounts sum to the balance. Audited."""
    await admin.require_customer(session, account_id=account_id)
    await admin.record_export(session, who.actor, "payments", account_id=account_id)
    return csv_response(
        request, slot, who.owner, f"payments-{account_id}.csv",
        ["id", "kind", "amount", "order_id", "email", "coupon", "description", "operator_id", "created"],
        lambda s: ledger.export_payments(s, account_id=account_id),
        lambda r: [r.id, r.kind, format_usd(r.amount_mills), r.order_public_id, r.email, r.coupon, r.description,
                   r.operator_id, r.created_at],
    )  # fmt: skip


@router.get(
    "/customers/{account_id}/deposits",
    operation_id="admin_customers_deposits",
    summary="A customer's deposits",
    responses=problem_responses(*SIGNED_IN, admin.CustomerNotFound, *LIST_ERRORS),
)
async def admin_customers_deposits(
    account_id: CustomerId,
    who: OperatorDep,
    session: SessionDep,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    ending_before: EndingBefore = None,
) -> AdminDepositList:
    """The customer's deposits (credited and not), newest first, with network, address, hash and amount."""
    page = await admin.customer_deposits(
        session, account_id=account_id, request=_page(limit, starting_after, ending_before)
    )
    return AdminDepositList(data=[AdminDepositOut.of(d) for d in page.items], has_more=page.has_more)


@router.get(
    "/customers/{account_id}/consents",
    operation_id="admin_customers_consents",
    summary="A customer's consent requests",
    responses=problem_responses(*SIGNED_IN, admin.CustomerNotFound),
)
async def admin_customers_consents(account_id: CustomerId, who: OperatorDep, session: SessionDep) -> ConsentList:
    """The newest 200 recipients this customer ordered for, and where each one's consent stands."""
    return ConsentList(data=[ConsentOut.of(c) for c in await admin.customer_consents(session, account_id=account_id)])


@router.post(
    "/customers/{account_id}/adjustments",
    operation_id="admin_customers_adjust",
    summary="Credit or debit a customer's balance (admin)",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"description": "Moved now, or replayed.", "headers": idempotency.REPLAYED_RESPONSE_HEADER},
        **problem_responses(
            *SIGNED_IN,
            *ROLE,
            admin.CustomerNotFound,
            admin.ReasonRequired,
            InsufficientBalance,
            idempotency.InvalidIdempotencyKey,
            idempotency.IdempotencyConflict,
        ),
    },
)
async def admin_customers_adjust(
    account_id: CustomerId,
    body: AdjustmentIn,
    who: OperatorDep,
    session: SessionDep,
    response: Response,
    idempotency_key: idempotency.IdempotencyKeyHeader = None,
) -> AdjustmentOut:
    """A ledger payment (`credit` or `debit`) carrying the operator and the reason, and its audit
    entry. A debit never takes the balance below zero (402 `insufficient_balance`). Send an
    `Idempotency-Key`: a retry then moves the money once."""
    amount = parse_usd(body.amount)
    signed = amount if body.direction == "credit" else -amount

    async def adjust() -> tuple[AdjustmentOut, int]:
        payment = await admin.adjust_balance(
            session, who.actor, who.operator, account_id=account_id, amount_mills=signed, reason=body.reason
        )
        balance = await admin.balance_of(session, account_id=account_id)
        return AdjustmentOut(payment=AdminPaymentOut.of(payment), balance=format_usd(balance)), 201

    operations = f"admin_adjust:{who.operator.id}"
    keyed = idempotency.Keyed(
        account_id, operations, idempotency_key, idempotency.fingerprint(signed=signed, reason=body.reason)
    )
    if idempotency_key is not None:
        await admin.require_customer(session, account_id=account_id)  # the key's row names the account
    return (await idempotency.once(session, keyed, AdjustmentOut, adjust)).render(response)


@router.post(
    "/customers/{account_id}/api-keys/{prefix}/revoke",
    operation_id="admin_customers_revoke_key",
    summary="Revoke a customer's API key",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*SIGNED_IN, *ROLE, admin.CustomerNotFound),
)
async def admin_customers_revoke_key(
    account_id: CustomerId,
    prefix: Annotated[str, Path(max_length=64)],
    who: OperatorDep,
    session: SessionDep,
) -> Response:
    """Revoke one of the customer's API keys (by its prefix): it stops working at once. Audited."""
    await admin.revoke_api_key(session, who.actor, who.operator, account_id=account_id, prefix=prefix)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/customers/{account_id}/sessions/end",
    operation_id="admin_customers_end_sessions",
    summary="End every browser session of a customer",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*SIGNED_IN, *ROLE, admin.CustomerNotFound),
)
async def admin_customers_end_sessions(account_id: CustomerId, who: OperatorDep, session: SessionDep) -> Response:
    """End every browser session of the customer (their API keys keep working). Audited."""
    await admin.end_customer_sessions(session, who.actor, who.operator, account_id=account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/customers/{account_id}/disable",
    operation_id="admin_customers_disable",
    summary="Disable a customer's account",
    responses=problem_responses(*SIGNED_IN, *ROLE, admin.CustomerNotFound),
)
async def admin_customers_disable(account_id: CustomerId, who: OperatorDep, session: SessionDep) -> CustomerOut:
    """Its API keys and sessions stop working at once; workers stop claiming its orders."""
    account = await admin.set_customer_disabled(session, who.actor, who.operator, account_id=account_id, disabled=True)
    return CustomerOut.of(account)


@router.post(
    "/customers/{account_id}/enable",
    operation_id="admin_customers_enable",
    summary="Enable a customer's account again",
    responses=problem_responses(*SIGNED_IN, *ROLE, admin.CustomerNotFound),
)
async def admin_customers_enable(account_id: CustomerId, who: OperatorDep, session: SessionDep) -> CustomerOut:
    """Enable a disabled customer again: keys work again; sessions ended by the disable stay ended. Audited."""
    account = await admin.set_customer_disabled(session, who.actor, who.operator, account_id=account_id, disabled=False)
    return CustomerOut.of(account)


# Orders ------------------------------------------------------------------------------------------


StatusQuery = Annotated[OrderStatus | None, Query(description="Only orders in this status.")]
RecipientQuery = Annotated[str | None, Query(max_length=320, description="Only orders to this address (any case).")]
AccountQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only this customer's orders.")]
AfterQuery = Annotated[datetime | None, Query(description="Placed at or after this time.")]
BeforeQuery = Annotated[datetime | None, Query(description="Placed before this time.")]
OrderCursor = Annotated[
    str | None, Query(max_length=16, description="An order id of the list: the page after (or before) it.")
]
StuckQuery = Annotated[
    bool,
    Query(description="Only open orders no worker moved for `ORDERSVC_STUCK_ORDER_MINUTES` (default 60)."),
]


def _order_filter(
    request: Request,
    status: StatusQuery = None,
    recipient: RecipientQuery = None,
    account_id: AccountQuery = None,
    created_after: AfterQuery = None,
    created_before: BeforeQuery = None,
    stuck: StuckQuery = False,
) -> admin.OrderFilter:
    """The order list's filters, the same for the list and its export."""
    return admin.OrderFilter(
        status=status.stored if status is not None else None,
        recipient=recipient,
        account_id=account_id,
        since=utc_param("created_after", created_after),
        until=utc_param("created_before", created_before),
        stuck_minutes=_settings(request).stuck_order_minutes if stuck else None,
    )


OrderFilterDep = Annotated[admin.OrderFilter, Depends(_order_filter)]


@router.get(
    "/orders",
    operation_id="admin_orders_list",
    summary="Orders across every account",
    responses=problem_responses(*SIGNED_IN, *LIST_ERRORS),
)
async def admin_orders_list(
    who: OperatorDep,
    session: SessionDep,
    f: OrderFilterDep,
    limit: Limit = 20,
    starting_after: OrderCursor = None,
    ending_before: OrderCursor = None,
) -> AdminOrderList:
    """Newest first; the cursors are order ids (`starting_after` the last one shown: older)."""
    page = await admin.page_orders(session, f, _page(limit, starting_after, ending_before))
    return AdminOrderList(data=[AdminOrderOut.of(o) for o in page.items], has_more=page.has_more)


@router.get(
    "/orders/export",
    operation_id="admin_orders_export",
    summary="Export orders (CSV)",
    responses={200: {"content": {"text/csv": {}}}, **problem_responses(*SIGNED_IN, *EXPORT_ERRORS)},
    response_class=StreamingResponse,
)
async def admin_orders_export(
    request: Request, slot: ExportSlotDep, who: OperatorDep, session: SessionDep, f: OrderFilterDep
) -> StreamingResponse:
    """The same filters as the list; every matching order, streamed. Audited, with the filters."""
    await admin.record_export(session, who.actor, "orders", filters=f)

    def rows(session: AsyncSession) -> AsyncIterator[Row[Any]]:
        return admin.stream_orders(session, f)

    return csv_response(
        request, slot, who.owner, "orders.csv",
        ["id", "account_id", "email", "quantity", "price", "status", "progress", "delivered", "created"],
        rows,
        lambda o: [o.public_id, o.account_id, o.email, o.quantity, format_usd(o.price_mills),
                   OrderStatus.of(o.status).value, o.progress, o.delivered, o.created_at],
    )  # fmt: skip


@router.post(
    "/orders/{order_id}/cancel",
    operation_id="admin_orders_cancel",
    summary="Cancel any customer's order",
    responses=problem_responses(*SIGNED_IN, *ROLE, OrderNotFound, OrderNotCancelable),
)
async def admin_orders_cancel(
    order_id: Annotated[str, Path(max_length=16, description="The public order id.")],
    who: OperatorDep,
    session: SessionDep,
) -> AdminCancellationOut:
    """As the customer's own cancel: before work starts, canceled now with a full refund; in
    progress, recorded for its worker (it ends with a refund of the undelivered share)."""
    cancellation = await admin.cancel_order(session, who.actor, who.operator, public_id=order_id.upper())
    return AdminCancellationOut(
        order=AdminOrderOut.of(cancellation.order), refund=format_usd(cancellation.refund_mills)
    )


# Deposits ----------------------------------------------------------------------------------------


@router.get(
    "/deposits/unmatched",
    operation_id="admin_deposits_unmatched",
    summary="Deposits no customer could be matched to",
    responses=problem_responses(*SIGNED_IN),
)
async def admin_deposits_unmatched(who: OperatorDep, session: SessionDep) -> AdminDepositList:
    """Deposits a processor reported to an address no customer holds (or held): each waits for an admin to assign it."""
    return AdminDepositList(data=[AdminDepositOut.of(d) for d in await deposits.unmatched_deposits(session)])


@router.post(
    "/deposits/{deposit_id}/assign",
    operation_id="admin_deposits_assign",
    summary="Credit an unmatched deposit to a customer (admin)",
    responses=problem_responses(
        *SIGNED_IN,
        *ROLE,
        idempotency.InvalidIdempotencyKey,
        idempotency.IdempotencyConflict,
        deposits.DepositNotFound,
        deposits.DepositNotUnmatched,
        deposits.TransferAlreadyCredited,
        AccountNotFound,
        InvalidEmail,
    ),
)
async def admin_deposits_assign(
    deposit_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: AssignIn,
    who: OperatorDep,
    session: SessionDep,
    response: Response,
    idempotency_key: idempotency.IdempotencyKeyHeader = None,
) -> AdminDepositOut:
    """With the bonus of the tiers in force now. Assigning twice is refused: it is credited once."""

    async def assign() -> tuple[AdminDepositOut, int]:
        deposit: Deposit = await admin.assign_deposit(
            session, who.actor, who.operator, deposit_id=deposit_id, email=body.email
        )
        return AdminDepositOut.of(deposit), 200

    if idempotency_key is None:
        return (await assign())[0]
    operators.require(who.operator, OperatorRole.ADMIN)
    account_id = await admin.customer_id_by_email(session, email=body.email)  # the key's row names the account
    keyed = idempotency.Keyed(
        account_id, f"admin_assign:{who.operator.id}", idempotency_key,
        idempotency.fingerprint(deposit_id=deposit_id, email=body.email),
    )  # fmt: skip
    return (await idempotency.once(session, keyed, AdminDepositOut, assign)).render(response)


# Operators ---------------------------------------------------------------------------------------


@router.get(
    "/operators",
    operation_id="admin_operators_list",
    summary="Operators (admin)",
    responses=problem_responses(*SIGNED_IN, *ROLE),
)
async def admin_operators_list(who: OperatorDep, session: SessionDep) -> OperatorList:
    """Every operator with their role, state and whether the authenticator is set up (admins only)."""
    operators.require(who.operator, OperatorRole.ADMIN)
    return OperatorList(data=[OperatorOut.of(o) for o in await operators.list_operators(session)])


@router.post(
    "/operators",
    operation_id="admin_operators_create",
    summary="Create an operator (admin)",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*SIGNED_IN, *ROLE, operators.OperatorExists),
)
async def admin_operators_create(
    request: Request, body: OperatorCreate, who: OperatorDep, session: SessionDep, response: Response
) -> OperatorLinkOut:
    """The answer carries the one-time link where the new operator chooses a password: hand it
    over yourself (nothing is mailed)."""
    operators.require(who.operator, OperatorRole.ADMIN)
    link = await operators.create_operator(
        session, who.actor, email=body.email, role=body.role, settings=_settings(request)
    )
    response.headers["Cache-Control"] = "no-store"  # the one-time link
    return OperatorLinkOut(operator=OperatorOut.of(link.operator), link=link.url, expires=link.expires_at)


@router.patch(
    "/operators/{operator_id}",
    operation_id="admin_operators_update",
    summary="Change an operator's role, or disable or enable them (admin)",
    responses=problem_responses(*SIGNED_IN, *ROLE, operators.OperatorNotFound, operators.LastAdmin),
)
async def admin_operators_update(
    operator_id: Annotated[int, Path(ge=1, le=2**63 - 1)], body: OperatorUpdate, who: OperatorDep, session: SessionDep
) -> OperatorOut:
    """Change an operator's role or disable (their sessions end at once) or enable them. The last
    active admin stays an admin. Audited."""
    operators.require(who.operator, OperatorRole.ADMIN)
    target = await operators.get_operator(session, operator_id=operator_id)
    if body.role is not None:
        target = await operators.set_role(session, who.actor, target, role=body.role)
    if body.disabled is not None:
        target = await operators.set_disabled(session, who.actor, target, disabled=body.disabled)
    return OperatorOut.of(target)


# Audit log ---------------------------------------------------------------------------------------

ActorQuery = Annotated[str | None, Query(max_length=320, description="An operator's email, or `cli:<user>@<host>`.")]
ActionQuery = Annotated[
    str | None, Query(max_length=100, description="An action, or a prefix ending in `.` (`payment.`).")
]
ObjectTypeQuery = Annotated[
    str | None, Query(max_length=50, description="`account`, `order`, `deposit`, `operator`...")
]
ObjectIdQuery = Annotated[str | None, Query(max_length=100)]


def _audit_filter(
    actor: ActorQuery = None,
    action: ActionQuery = None,
    object_type: ObjectTypeQuery = None,
    object_id: ObjectIdQuery = None,
    since: AfterQuery = None,
    until: BeforeQuery = None,
) -> AuditFilter:
    """The audit log's filters, the same for the list and its export."""
    return AuditFilter(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=utc_param("since", since),
        until=utc_param("until", until),
    )


AuditFilterDep = Annotated[AuditFilter, Depends(_audit_filter)]


@router.get(
    "/audit",
    operation_id="admin_audit_list",
    summary="The audit log",
    responses=problem_responses(*SIGNED_IN, *LIST_ERRORS),
)
async def admin_audit_list(
    who: OperatorDep,
    session: SessionDep,
    f: AuditFilterDep,
    limit: Limit = 50,
    starting_after: StartingAfter = None,
    ending_before: EndingBefore = None,
) -> AuditList:
    """Every operator action and sign-in, and the CLI's money moves, newest first."""
    page = await audit.page(session, f, _page(limit, starting_after, ending_before))
    return AuditList(data=[AuditEntryOut.of(e) for e in page.items], has_more=page.has_more)


@router.get(
    "/audit/export",
    operation_id="admin_audit_export",
    summary="Export the audit log (CSV)",
    responses={200: {"content": {"text/csv": {}}}, **problem_responses(*SIGNED_IN, *EXPORT_ERRORS)},
    response_class=StreamingResponse,
)
async def admin_audit_export(
    request: Request, slot: ExportSlotDep, who: OperatorDep, session: SessionDep, f: AuditFilterDep
) -> StreamingResponse:
    """The audit log as CSV, with the list's filters, streamed from one consistent snapshot: before
    and after as JSON. The export is itself audited, with the filters."""
    await admin.record_export(session, who.actor, "audit", filters=f)

    def rows(session: AsyncSession) -> AsyncIterator[audit.AuditEntry]:
        return audit.stream(session, f)

    def render(e: audit.AuditEntry) -> list[object]:
        dumped = [json.dumps(v, sort_keys=True) if v is not None else None for v in (e.before, e.after)]
        return [e.id, e.created_at, e.actor, e.action, e.object_type, e.object_id, *dumped, e.reason, e.ip]

    return csv_response(
        request, slot, who.owner, "audit.csv",
        ["id", "created", "actor", "action", "object_type", "object_id", "before", "after", "reason", "ip"],
        rows, render,
    )  # fmt: skip
