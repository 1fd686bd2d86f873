from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.accounts.models import Account
from ordersvc.deposits.models import Deposit
from ordersvc.ledger.models import Payment
from ordersvc.orders.models import Order
from ordersvc.pagination import (
    OWNER,
    CursorRequest,
    NumberedList,
    PageWindow,
    fetch_cursor_page,
    owned_by,
)


async def post_payment(
    session: AsyncSession,
    *,
    account_id: int,
    kind: str,
    amount_mills: int,
    email: str | None,
    order_id: int | None,
    coupon: str | None,
    deposit_id: int | None,
    description: str | None,
) -> tuple[int, datetime] | None:
    """`ordersvc_post_payment`: the payment and the balance move; (its id, its time), or None
    when there is no such account. An account loaded in the session forgets its balance and
    counters, which the database moved."""
    stmt = sa.text(
        "SELECT payment_id, created_at FROM ordersvc_post_payment("
        ":account_id, :kind, :amount_mills, :email, :order_id, :coupon, :deposit_id, :description)"
    ).bindparams(
        account_id=account_id,
        kind=kind,
        amount_mills=amount_mills,
        email=email,
        order_id=order_id,
        coupon=coupon,
        deposit_id=deposit_id,
        description=description,
    )
    row = (await session.execute(stmt)).one_or_none()
    loaded = session.identity_map.get(sa.orm.util.identity_key(Account, account_id))
    if loaded is not None:
        session.expire(loaded, ["balance_mills", "payments_count", "orders_count"])
    return None if row is None else (row[0], row[1])


async def get_balance(session: AsyncSession, account_id: int) -> int | None:
    stmt = sa.select(col(Account.balance_mills)).where(col(Account.id) == account_id)
    return (await session.execute(stmt)).scalar_one_or_none()


PaymentLine = sa.Row[int, datetime | None, str | None, str | None, str | None]
"""A payment as the legacy list shows it: amount_mills, created_at, email, coupon, and the
public id of its order (order_public_id)."""

_PAYMENT_LINES: NumberedList[int, datetime | None, str | None, str | None, str | None] = NumberedList(
    sa.select(
        col(Payment.amount_mills),
        col(Payment.created_at),
        col(Payment.email),
        col(Payment.coupon),
        col(Order.public_id).label("order_public_id"),
    )
    .outerjoin(Order, col(Order.id) == col(Payment.order_id))
    .where(owned_by(col(Payment.account_id), OWNER)),
    id_column=col(Payment.id),
    owner_column=col(Payment.account_id),
    counter=col(Account.payments_count),
    owner_id=col(Account.id),
)


async def count_payments(session: AsyncSession, account_id: int) -> tuple[int, int | None]:
    """(number of payments, highest payment id), both as of one snapshot."""
    return await _PAYMENT_LINES.count(session, account_id)


async def payments_window(session: AsyncSession, account_id: int, window: PageWindow) -> list[PaymentLine]:
    """The window's payments, oldest first: the columns of a list line, not whole entities."""
    return await _PAYMENT_LINES.window(session, account_id, window)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    payment: Payment
    order_public_id: str | None
    deposit_network: str | None = None


def _entries(account_id: int) -> sa.Select[Payment, str, str | None]:
    """The account's payments with the public id of the order and the network of the deposit
    each refers to."""
    return (
        sa.select(Payment, col(Order.public_id), col(Deposit.network))
        .outerjoin(Order, col(Order.id) == col(Payment.order_id))
        .outerjoin(Deposit, col(Deposit.id) == col(Payment.deposit_id))
        .where(owned_by(col(Payment.account_id), account_id))
    )


async def payments_page(
    session: AsyncSession, account_id: int, kind: str | None, request: CursorRequest
) -> tuple[list[LedgerEntry], bool]:
    """A cursor page of payments, newest first."""
    stmt = _entries(account_id)
    if kind is not None:
        stmt = stmt.where(col(Payment.kind) == kind)
    rows, has_more = await fetch_cursor_page(
        session, stmt, col(Payment.id), request, owner_column=col(Payment.account_id)
    )
    return [LedgerEntry(row[0], row[1], row[2]) for row in rows], has_more


async def payment_exists(session: AsyncSession, account_id: int, payment_id: int) -> bool:
    stmt = sa.select(col(Payment.id)).where(col(Payment.id) == payment_id, col(Payment.account_id) == account_id)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


@dataclass(frozen=True, slots=True)
class BalanceMismatch:
    account_id: int
    email: str
    balance_mills: int
    payments_sum_mills: int


async def balance_mismatches(session: AsyncSession) -> list[BalanceMismatch]:
    sums = (
        sa.select(col(Payment.account_id), sa.func.sum(col(Payment.amount_mills)).label("total"))
        .group_by(col(Payment.account_id))
        .subquery()
    )
    payments_sum = sa.func.coalesce(sums.c.total, 0)
    stmt = (
        sa.select(col(Account.id), col(Account.email), col(Account.balance_mills), payments_sum)
        .outerjoin(sums, sums.c.account_id == col(Account.id))
        .where(col(Account.balance_mills) != payments_sum)
        .order_by(col(Account.id))
    )
    rows = (await session.execute(stmt)).all()
    return [BalanceMismatch(int(r[0]), r[1], int(r[2]), int(r[3])) for r in rows]


@dataclass(frozen=True, slots=True)
class CountMismatch:
    account_id: int
    email: str
    what: str  # "payments" or "orders"
    counted: int  # the account's counter
    actual: int


async def count_mismatches(session: AsyncSession) -> list[CountMismatch]:
    payments = (
        sa.select(col(Payment.account_id), sa.func.count().label("n")).group_by(col(Payment.account_id)).subquery()
    )
    orders = sa.select(col(Order.account_id), sa.func.count().label("n")).group_by(col(Order.account_id)).subquery()
    actual_payments = sa.func.coalesce(payments.c.n, 0)
    actual_orders = sa.func.coalesce(orders.c.n, 0)
    stmt = (
        sa.select(
            col(Account.id), col(Account.email), col(Account.payments_count), actual_payments,
            col(Account.orders_count), actual_orders,
        )
        .outerjoin(payments, payments.c.account_id == col(Account.id))
        .outerjoin(orders, orders.c.account_id == col(Account.id))
        .where(sa.or_(col(Account.payments_count) != actual_payments, col(Account.orders_count) != actual_orders))
        .order_by(col(Account.id))
    )  # fmt: skip
    mismatches = []
    for r in (await session.execute(stmt)).all():
        if r[2] != r[3]:
            mismatches.append(CountMismatch(int(r[0]), r[1], "payments", int(r[2]), int(r[3])))
        if r[4] != r[5]:
            mismatches.append(CountMismatch(int(r[0]), r[1], "orders", int(r[4]), int(r[5])))
    return mismatches


async def recount(session: AsyncSession) -> int:
    """Set every account's payment and order counters to the real counts; returns how many
    accounts changed. Writers of payments and orders wait meanwhile (SHARE locks): the counts and
    the writes come from one consistent state."""
    await session.execute(sa.text("LOCK TABLE payments, orders IN SHARE MODE"))
    result = await session.execute(
        sa.text(
            """
            UPDATE accounts a SET payments_count = c.payments, orders_count = c.orders
            FROM (
                SELECT a2.id,
                       (SELECT count(*) FROM payments p WHERE p.account_id = a2.id) AS payments,
                       (SELECT count(*) FROM orders o WHERE o.account_id = a2.id) AS orders
                FROM accounts a2
            ) c
            WHERE a.id = c.id AND (a.payments_count <> c.payments OR a.orders_count <> c.orders)
            """
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
