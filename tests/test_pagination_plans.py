"""The lists' statements read the owner's rows from the (account, id) index, whatever plan the
server settles on: a prepared statement runs a custom plan at first and may switch to a generic
one (the driver keeps statements prepared), so both are checked. With an equality on the owner
PostgreSQL could serve `ORDER BY id` from the primary key, skipping every newer row of other
owners (`pagination.owned_by`).

Sequential scans are priced out (`enable_seqscan = off`): on a table of a few rows, such as the
deposits a payment line looks up, a scan is the planner's honest choice, and what the check proves
is that every table the statement reads has an index that serves it, whatever the data the other
tests left behind."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts.callers import AccountCaller, ApiKeyCaller
from ordersvc.accounts.repository import caller_arguments
from ordersvc.ledger import repository as ledger_repository
from ordersvc.orders import repository as orders_repository
from ordersvc.pagination import CursorRequest
from tests.conftest import MakeCustomer

_ORDERS, _PAYMENTS = orders_repository._ORDER_PAGES, ledger_repository._PAYMENT_PAGES
LISTS = [
    # (statement, its arguments after the owner's (None: the owner's id), its index, the table's primary key)
    (orders_repository._ORDER_LINES.sql, (None, 100), "ix_orders_account_id_id", "orders_pkey"),
    (orders_repository._ORDER_LINES.sql, (1, 100), "ix_orders_account_id_id", "orders_pkey"),
    (ledger_repository._PAYMENT_LINES.sql, (None, 100), "ix_payments_account_id_id", "payments_pkey"),
    (*_ORDERS.statement(CursorRequest(limit=20), None, None, None, None), "ix_orders_account_id_id", None),
    (
        *_ORDERS.statement(CursorRequest(starting_after="0000000A"), None, None, None, None),
        "ix_orders_account_id_id",
        None,
    ),
    (
        *_ORDERS.statement(CursorRequest(ending_before="0000000A"), "pending", None, None, None),
        "ix_orders_account_id_id",
        None,
    ),
    (*_PAYMENTS.statement(CursorRequest(limit=20), None), "ix_payments_account_id_id", "payments_pkey"),
    (*_PAYMENTS.statement(CursorRequest(starting_after=7), "order"), "ix_payments_account_id_id", "payments_pkey"),
]


def _literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return "NULL" if value is None else str(value)


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize(
    ("sql", "arguments", "index", "primary_key"),
    LISTS,
    ids=[
        "orders-last",
        "orders-first",
        "payments-last",
        "orders-cursor-newest",
        "orders-cursor-after",
        "orders-cursor-before-filtered",
        "payments-cursor-newest",
        "payments-cursor-after-filtered",
    ],
)
async def test_the_owners_rows_come_from_its_index(
    make_customer: MakeCustomer,
    sessionmaker: async_sessionmaker[AsyncSession],
    plan_cache_mode: str,
    sql: str,
    arguments: tuple[Any, ...],
    index: str,
    primary_key: str | None,
) -> None:
    customer = await make_customer(balance="1")
    async with sessionmaker() as session:
        connection = await session.connection()
        await connection.exec_driver_sql(f"SET LOCAL plan_cache_mode = {plan_cache_mode}")
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        await connection.exec_driver_sql(f"PREPARE page_plan AS {sql}")
        values = ", ".join(_literal(v) for v in (None, None, customer.account_id, *arguments))
        rows = (await connection.exec_driver_sql(f"EXPLAIN EXECUTE page_plan({values})")).all()
        await connection.exec_driver_sql("DEALLOCATE page_plan")
    plan = "\n".join(row[0] for row in rows)
    assert index in plan, plan
    if primary_key is not None:  # the list's own rows (alias `x`); a cursor's one row may come by its id
        assert not re.search(rf"using {primary_key} on \w+ x\b", plan), plan
    scans = [line for line in plan.splitlines() if "Seq Scan" in line]
    assert not scans, plan


@pytest.mark.parametrize("by_key", [True, False], ids=["api-key", "account"])
@pytest.mark.parametrize(
    ("sql", "arguments"),
    [
        _ORDERS.statement(CursorRequest(), None, None, None, None),
        _ORDERS.statement(CursorRequest(limit=3), None, None, None, None),
        _ORDERS.statement(CursorRequest(starting_after="0000000A"), None, None, None, None),
        _ORDERS.statement(CursorRequest(ending_before="0000000A"), None, None, None, None),
        _PAYMENTS.statement(CursorRequest(), None),
        _PAYMENTS.statement(CursorRequest(starting_after=7), None),
    ],
    ids=["orders-newest", "orders-newest-3", "orders-after", "orders-before", "payments-newest", "payments-after"],
)
async def test_a_cursor_page_keeps_its_generic_plan(
    make_customer: MakeCustomer, database_url: str, by_key: bool, sql: str, arguments: tuple[Any, ...]
) -> None:
    """The driver keeps each statement prepared; the server plans it for the values of the
    first five calls, then keeps the generic plan when that is no dearer. A page's statement
    names only the parts it uses and hides its size, so it gets there: no planning at each call,
    whoever the caller (the parameters of an API key's or of an account's)."""
    customer = await make_customer(balance="1")
    caller = caller_arguments(ApiKeyCaller(customer.api_key) if by_key else AccountCaller(customer.account_id))
    connection = await asyncpg.connect(database_url)
    try:
        statement = await connection.prepare(sql)
        for _ in range(10):
            assert (await statement.fetch(*caller, *arguments))[0][0] == customer.account_id
        generic, custom = await connection.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", sql
        )
    finally:
        await connection.close()
    assert (generic, custom) == (5, 5)


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
async def test_an_addresss_consent_requests_come_from_their_index(
    sessionmaker: async_sessionmaker[AsyncSession], plan_cache_mode: str
) -> None:
    """A recipient's opt-out and the console's recipient page read an address's requests across
    accounts: through `ix_recipient_consents_email_id`, never the (account, email) key."""
    async with sessionmaker() as session:
        connection = await session.connection()
        await connection.exec_driver_sql(f"SET LOCAL plan_cache_mode = {plan_cache_mode}")
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        await connection.exec_driver_sql(
            "PREPARE by_address AS SELECT * FROM recipient_consents WHERE email = $1 ORDER BY id DESC LIMIT 500"
        )
        rows = (await connection.exec_driver_sql("EXPLAIN EXECUTE by_address('a@example.com')")).all()
        await connection.exec_driver_sql("DEALLOCATE by_address")
    plan = "\n".join(row[0] for row in rows)
    assert "ix_recipient_consents_email_id" in plan, plan
