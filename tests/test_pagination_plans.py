"""The lists' statements read the owner's rows from the (account, id) index, whatever plan the
server settles on: a prepared statement runs a custom plan at first and may switch to a generic
one (the driver keeps statements prepared), so both are checked. With an equality on the owner
PostgreSQL could serve `ORDER BY id` from the primary key, skipping every newer row of other
owners (`pagination.owned_by`)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.ledger import repository as ledger_repository
from ordersvc.orders import repository as orders_repository
from tests.conftest import MakeCustomer

LISTS = [
    # (statement, its arguments after the owner's (None: the owner's id), its index, the table's primary key)
    (orders_repository._ORDER_LINES.sql, (None, 100), "ix_orders_account_id_id", "orders_pkey"),
    (orders_repository._ORDER_LINES.sql, (1, 100), "ix_orders_account_id_id", "orders_pkey"),
    (ledger_repository._PAYMENT_LINES.sql, (None, 100), "ix_payments_account_id_id", "payments_pkey"),
    (orders_repository._ORDER_PAGES.sql, (None, None, 20, None, None, None, None), "ix_orders_account_id_id", None),
    (ledger_repository._PAYMENT_PAGES.sql, (None, None, 20, None), "ix_payments_account_id_id", "payments_pkey"),
]


def _literal(value: object) -> str:
    return "NULL" if value is None else str(value)


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize(
    ("sql", "arguments", "index", "primary_key"),
    LISTS,
    ids=["orders-last", "orders-first", "payments-last", "orders-cursor", "payments-cursor"],
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
        await connection.exec_driver_sql(f"PREPARE page_plan AS {sql}")
        values = ", ".join(_literal(v) for v in (None, None, customer.account_id, *arguments))
        rows = (await connection.exec_driver_sql(f"EXPLAIN EXECUTE page_plan({values})")).all()
        await connection.exec_driver_sql("DEALLOCATE page_plan")
    plan = "\n".join(row[0] for row in rows)
    assert index in plan, plan
    if primary_key is not None:
        assert primary_key not in plan, plan
    scans = [line for line in plan.splitlines() if "Seq Scan" in line]
    assert not scans, plan
