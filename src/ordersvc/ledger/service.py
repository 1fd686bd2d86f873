"""The ledger: the only writer of balances. Every change is one signed, insert-only payment,
and the account's running balance moves with it in the same transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from ordersvc.accounts import service as accounts_service
from ordersvc.accounts.callers import AccountCaller, Caller, caller_or_account
from ordersvc.errors import InvalidApiKey, NotFound, ServiceError
from ordersvc.ledger import repository
from ordersvc.ledger.models import NEGATIVE_KINDS, POSITIVE_KINDS, Payment, PaymentKind
from ordersvc.ledger.repository import BalanceMismatch, CountMismatch, LedgerEntry
from ordersvc.orders.models import Order
from ordersvc.pagination import DEFAULT_LIMIT, CursorPage, CursorRequest, NumberedPage, PageRequest, stream_by_id

__all__ = ["BalanceMismatch", "InsufficientBalance", "LedgerEntry"]


class InsufficientBalance(ServiceError):
    # 402 Payment Required: the request is fine, the account needs money first.
    status = 402
    code = "insufficient_balance"
    message = "Insufficient balance."


async def post_payment(
    session: AsyncSession,
    *,
    account_id: int,
    kind: PaymentKind,
    amount_mills: int,
    email: str | None = None,
    order_id: int | None = None,
    coupon: str | None = None,
    deposit_id: int | None = None,
    description: str | None = None,
    operator_id: int | None = None,
) -> Payment:
    """Record one payment and move the running balance by its amount, in the caller's
    transaction: the database's `ordersvc_post_payments` (`ledger/sql/`), the one balance move,
    which the order statement uses for its debits too. A debit must first lock the account row
    and check the balance, as the order statement does; the database's `balance_not_negative`
    check is the last line of defence against an overdraft."""
    if (kind in POSITIVE_KINDS and amount_mills <= 0) or (kind in NEGATIVE_KINDS and amount_mills >= 0):
        raise ValueError(f"a {kind} payment cannot be {amount_mills} mills")
    posted = await repository.post_payment(
        session,
        account_id=account_id,
        kind=kind.value,
        amount_mills=amount_mills,
        email=email,
        order_id=order_id,
        coupon=coupon,
        deposit_id=deposit_id,
        description=description,
        operator_id=operator_id,
    )
    if posted is None:
        raise NotFound("No such account.")
    payment_id, created_at = posted
    return Payment(
        id=payment_id,
        account_id=account_id,
        kind=kind.value,
        amount_mills=amount_mills,
        email=email,
        order_id=order_id,
        coupon=coupon,
        deposit_id=deposit_id,
        description=description,
        operator_id=operator_id,
        created_at=created_at,
    )


async def credit(session: AsyncSession, *, email: str, amount_mills: int, description: str | None = None) -> Payment:
    """An operator's manual top-up of the account with this email."""
    account = await accounts_service.get_account_by_email(session, email=email)
    assert account.id is not None
    return await post_payment(
        session, account_id=account.id, kind=PaymentKind.CREDIT, amount_mills=amount_mills, description=description
    )


async def adjust(
    session: AsyncSession, *, account_id: int, amount_mills: int, reason: str, operator_id: int | None
) -> Payment:
    """An operator's manual payment: a `credit` (positive `amount_mills`) or a `debit`
    (negative), with its reason and the console's operator (None: the CLI). A debit locks the
    account row and never takes the balance below zero (InsufficientBalance)."""
    if amount_mills == 0:
        raise ValueError("a manual payment moves money")
    balance = await repository.lock_balance(session, account_id)
    if balance is None:
        raise NotFound("No such account.")
    if amount_mills < 0 and balance + amount_mills < 0:
        raise InsufficientBalance("The balance does not cover this debit.")
    kind = PaymentKind.CREDIT if amount_mills > 0 else PaymentKind.DEBIT
    return await post_payment(
        session,
        account_id=account_id,
        kind=kind,
        amount_mills=amount_mills,
        description=reason,
        operator_id=operator_id,
    )


async def get_balance(session: AsyncSession, *, account_id: int) -> int:
    """The running balance of an account already known (the operator's, or in a transaction
    that just moved it): one indexed row, however long the account's history."""
    balance = await repository.get_balance(session, AccountCaller(account_id))
    if balance is None:
        raise NotFound("No such account.")
    return balance


async def balance_of(engine: AsyncEngine, *, caller: Caller) -> int:
    """The caller's running balance, in one statement that checks the caller (InvalidApiKey)."""
    balance = await repository.get_balance(engine, caller)
    if balance is None:
        raise InvalidApiKey()
    return balance


async def list_payments(
    reader: AsyncEngine | AsyncSession,
    *,
    page: PageRequest,
    caller: Caller | None = None,
    account_id: int | None = None,
) -> NumberedPage[repository.PaymentLine]:
    """A numbered page of payments (the legacy list), counted and windowed in one statement, so
    as of one snapshot, on its own (an engine) or in a transaction (a session). Of `caller`,
    whose key that statement checks (InvalidApiKey), or of an account already known
    (`account_id`: the operator's, or one a browser session authenticated)."""
    found = await repository.payments_numbered_page(reader, caller_or_account(caller, account_id), page)
    if found is None:
        raise InvalidApiKey()
    return found


async def page_payments(
    engine: AsyncEngine,
    *,
    caller: Caller,
    kind: PaymentKind | None = None,
    limit: int = DEFAULT_LIMIT,
    starting_after: int | None = None,
    ending_before: int | None = None,
) -> CursorPage[LedgerEntry]:
    """The caller's payments, newest first; the cursors are payment ids of the caller's
    (InvalidCursor for any other). One statement checks the caller (InvalidApiKey), finds the
    cursors and reads the page."""
    try:
        request = CursorRequest(limit=limit, starting_after=starting_after, ending_before=ending_before)
    except ServiceError:
        await accounts_service.check_caller(engine, caller)  # an invalid key is refused first
        raise
    page = await repository.payments_page(engine, caller, kind.value if kind else None, request)
    if page is None:
        raise InvalidApiKey()
    return page


async def verify(session: AsyncSession) -> list[BalanceMismatch]:
    """Every account whose running balance differs from the sum of its payments."""
    return await repository.balance_mismatches(session)


async def verify_counts(session: AsyncSession) -> list[CountMismatch]:
    """Every account whose payment or order counter differs from its real count."""
    return await repository.count_mismatches(session)


async def recount(session: AsyncSession) -> int:
    """Repair drifted payment/order counters (e.g. after old code wrote during a rolling deploy
    across migration 0008); the number of accounts repaired."""
    return await repository.recount(session)


def export_payments(session: AsyncSession, *, account_id: int) -> AsyncIterator[sa.Row[Any]]:
    """Every payment of the account, as rows of its columns (`id`, `kind`, `amount_mills`,
    `email`, `coupon`, `description`, `operator_id`, `created_at`) and its order's public id
    (`order_public_id`), newest first, streamed (`GET /v1/payments/export`)."""
    columns = (Payment.id, Payment.kind, Payment.amount_mills, Payment.email, Payment.coupon, Payment.description,
               Payment.operator_id, Payment.created_at)  # fmt: skip
    stmt = (
        sa.select(*(col(c) for c in columns), col(Order.public_id).label("order_public_id"))
        .outerjoin(Order, col(Order.id) == col(Payment.order_id))
        .where(col(Payment.account_id) == account_id)
    )
    return stream_by_id(session, stmt, col(Payment.id))
