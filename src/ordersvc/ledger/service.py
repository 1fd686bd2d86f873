"""The ledger: the only writer of balances. Every change is one signed, insert-only payment,
and the account's running balance moves with it in the same transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.accounts import service as accounts_service
from ordersvc.errors import NotFound, ServiceError
from ordersvc.ledger import repository
from ordersvc.ledger.models import NEGATIVE_KINDS, POSITIVE_KINDS, Payment, PaymentKind
from ordersvc.ledger.repository import BalanceMismatch, CountMismatch, LedgerEntry
from ordersvc.pagination import (
    DEFAULT_LIMIT,
    CursorPage,
    CursorRequest,
    InvalidCursor,
    NumberedPage,
    PageRequest,
    PageWindow,
)

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
) -> Payment:
    """Record one payment and move the running balance by its amount, in the caller's
    transaction: the database's `ordersvc_post_payment` (`ledger/sql/`), the one balance move,
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
        created_at=created_at,
    )


async def credit(session: AsyncSession, *, email: str, amount_mills: int, description: str | None = None) -> Payment:
    """An operator's manual top-up of the account with this email."""
    account = await accounts_service.get_account_by_email(session, email=email)
    assert account.id is not None
    return await post_payment(
        session, account_id=account.id, kind=PaymentKind.CREDIT, amount_mills=amount_mills, description=description
    )


async def get_balance(session: AsyncSession, *, account_id: int) -> int:
    """The running balance: one indexed row, however long the account's history."""
    balance = await repository.get_balance(session, account_id)
    if balance is None:
        raise NotFound("No such account.")
    return balance


async def list_payments(
    session: AsyncSession, *, account_id: int, page: PageRequest
) -> NumberedPage[repository.PaymentLine]:
    window = PageWindow.resolve(page, *await repository.count_payments(session, account_id))
    items = await repository.payments_window(session, account_id, window)
    return NumberedPage(items=items, page=window.page, per_page=window.per_page, total=window.total)


async def page_payments(
    session: AsyncSession,
    *,
    account_id: int,
    kind: PaymentKind | None = None,
    limit: int = DEFAULT_LIMIT,
    starting_after: int | None = None,
    ending_before: int | None = None,
) -> CursorPage[LedgerEntry]:
    """Newest first; the cursors are payment ids of this account."""
    CursorRequest.check_one_direction(starting_after, ending_before)
    for cursor in (starting_after, ending_before):
        if cursor is not None and not await repository.payment_exists(session, account_id, cursor):
            raise InvalidCursor()
    request = CursorRequest(limit=limit, starting_after=starting_after, ending_before=ending_before)
    items, has_more = await repository.payments_page(session, account_id, kind.value if kind else None, request)
    return CursorPage(items=items, has_more=has_more)


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
