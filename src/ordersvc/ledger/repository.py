from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from ordersvc.accounts.callers import Caller
from ordersvc.accounts.models import Account
from ordersvc.accounts.repository import CALLER_ACCOUNT, CALLER_PARAMETERS, Reader, fetch_as
from ordersvc.ledger.models import Payment
from ordersvc.orders.models import Order
from ordersvc.pagination import CursorList, CursorPage, CursorRequest, NumberedList, NumberedPage, PageRequest


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
    operator_id: int | None = None,
) -> tuple[int, datetime] | None:
    """`ordersvc_post_payments` with one payment: the payment and the balance move; (its id, its
    time), or None when there is no such account. An account loaded in the session forgets its
    balance and counters, which the database moved."""
    stmt = sa.text(
        "SELECT payment_id, created_at FROM ordersvc_post_payments("
        "ARRAY[CAST(:account_id AS bigint)], ARRAY[CAST(:kind AS text)], ARRAY[CAST(:amount_mills AS bigint)],"
        " ARRAY[CAST(:email AS text)], ARRAY[CAST(:order_id AS bigint)], ARRAY[CAST(:coupon AS text)],"
        " ARRAY[CAST(:deposit_id AS bigint)], ARRAY[CAST(:description AS text)], ARRAY[CAST(:operator_id AS bigint)])"
    ).bindparams(
        account_id=account_id,
        kind=kind,
        amount_mills=amount_mills,
        email=email,
        order_id=order_id,
        coupon=coupon,
        deposit_id=deposit_id,
        description=description,
        operator_id=operator_id,
    )
    row = (await session.execute(stmt)).one_or_none()
    loaded = session.identity_map.get(sa.orm.util.identity_key(Account, account_id))
    if loaded is not None:
        session.expire(loaded, ["balance_mills", "payments_count", "orders_count"])
    return None if row is None else (row[0], row[1])


async def lock_balance(session: AsyncSession, account_id: int) -> int | None:
    """The account's balance, its row locked for the rest of the transaction (as an order
    statement locks it: `FOR NO KEY UPDATE`); None when there is no such account."""
    stmt = sa.select(col(Account.balance_mills)).where(col(Account.id) == account_id).with_for_update(key_share=True)
    return (await session.execute(stmt)).scalar_one_or_none()


_BALANCE = f"SELECT accounts.balance_mills FROM accounts WHERE accounts.id = {CALLER_ACCOUNT}"  # noqa: S608 (constant)


async def get_balance(reader: Reader, caller: Caller) -> int | None:
    """The caller's running balance, in one statement that checks the caller: one indexed row,
    however long its history. None when the key is not valid (or there is no such account)."""
    rows = await fetch_as(reader, caller, _BALANCE)
    return rows[0][0] if rows else None


_ORDER_PUBLIC_ID = "(SELECT o.public_id FROM orders o WHERE o.id = r.order_id)"
_DEPOSIT_NETWORK = "(SELECT d.network FROM deposits d WHERE d.id = r.deposit_id)"


class PaymentLine(NamedTuple):
    """A payment as the legacy list shows it, with the public id of its order."""

    amount_mills: int
    created_at: datetime | None
    email: str | None
    coupon: str | None
    order_public_id: str | None


_PAYMENT_LINES: NumberedList[PaymentLine] = NumberedList(
    item=PaymentLine._make,
    table="payments x",
    columns=("x.amount_mills", "x.created_at", "x.email", "x.coupon", "x.order_id"),
    output=f"r.amount_mills, r.created_at, r.email, r.coupon, {_ORDER_PUBLIC_ID}",
    row_id="x.id",
    row_owner="x.account_id",
    counter="payments_count",
    owner=CALLER_ACCOUNT,
    owner_parameters=CALLER_PARAMETERS,
)


async def payments_numbered_page(reader: Reader, caller: Caller, page: PageRequest) -> NumberedPage[PaymentLine] | None:
    """A numbered page of the caller's payments, oldest first, in one statement that checks the
    caller: the columns of a list line, not whole entities. None when the key is not valid."""
    rows = await fetch_as(reader, caller, _PAYMENT_LINES.sql, *_PAYMENT_LINES.arguments(page))
    return _PAYMENT_LINES.page_of(rows, page)


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """A payment as read for a list: its columns, no ORM object (building a `Payment` cost five
    times what rendering it does)."""

    id: int
    account_id: int
    kind: str
    amount_mills: int
    email: str | None
    order_id: int | None
    coupon: str | None
    deposit_id: int | None
    description: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    payment: PaymentRow
    order_public_id: str | None
    deposit_network: str | None = None


_PAYMENT_COLUMNS = tuple(PaymentRow.__dataclass_fields__)

_PAYMENT_PAGES: CursorList[*tuple[Any, ...]] = CursorList(
    table="payments x",
    columns=[f"x.{name}" for name in _PAYMENT_COLUMNS],
    output=", ".join([*(f"r.{name}" for name in _PAYMENT_COLUMNS), _ORDER_PUBLIC_ID, _DEPOSIT_NETWORK]),
    row_id="x.id",
    row_owner="x.account_id",
    cursor_row="(SELECT c.id FROM payments c WHERE c.account_id = {owner} AND c.id = {cursor})",
    cursor_type="bigint",
    owner=CALLER_ACCOUNT,
    owner_parameters=CALLER_PARAMETERS,
    filters=(("x.kind = {}", "text"),),
)


async def payments_page(
    engine: AsyncEngine, caller: Caller, kind: str | None, request: CursorRequest
) -> CursorPage[LedgerEntry] | None:
    """A cursor page of the caller's payments, newest first, in one statement that checks the
    caller and finds the cursors among its payments. None when the key is not valid."""
    sql, arguments = _PAYMENT_PAGES.statement(request, kind)
    rows = await fetch_as(engine, caller, sql, *arguments)
    page = _PAYMENT_PAGES.page_of(rows, request)
    if page is None:
        return None
    width = len(_PAYMENT_COLUMNS)
    entries = [LedgerEntry(PaymentRow(*row[:width]), row[width], row[width + 1]) for row in page.items]
    return CursorPage(items=entries, has_more=page.has_more)


async def entries_by_ids(session: AsyncSession, payment_ids: list[int]) -> dict[int, LedgerEntry]:
    """Payments by id, as a list renders them (with their order's public id and deposit network)."""
    if not payment_ids:
        return {}
    columns = ", ".join(f"r.{name}" for name in _PAYMENT_COLUMNS)
    sql = f"SELECT {columns}, {_ORDER_PUBLIC_ID}, {_DEPOSIT_NETWORK} FROM payments r WHERE r.id = ANY(:ids)"  # noqa: S608
    rows = await session.execute(
        sa.text(sql),
        {"ids": payment_ids},
    )
    width = len(_PAYMENT_COLUMNS)
    return {row[0]: LedgerEntry(PaymentRow(*row[:width]), row[width], row[width + 1]) for row in rows}


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
