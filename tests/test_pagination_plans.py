"""The legacy lists' statements are read from the (account, id) index whatever the bound.

A page is read up to the highest id counted (`PageWindow.last_id`). Written as an index
condition, a bound low in the id space let the planner read the primary key up to it and sort:
every row of the table below the bound, for one page. The bound is a filter (`id + 0`)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.ledger import repository as ledger_repository
from ordersvc.orders import repository as orders_repository
from tests.conftest import MakeCustomer

BOUND_IN_INDEX = re.compile(r"(?<![A-Za-z_])id <=")  # `id <= 1`, `payments.id <= 1`; not `account_id <=`


def _literal(statement: sa.Select[Any], params: dict[str, int]) -> str:
    bound = statement.params(**params)
    return str(bound.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize(
    ("lines", "index", "primary_key"),
    [
        (orders_repository._ORDER_LINES, "ix_orders_account_id_id", "orders_pkey"),
        (ledger_repository._PAYMENT_LINES, "ix_payments_account_id_id", "payments_pkey"),
    ],
    ids=["orders", "payments"],
)
async def test_a_low_bound_never_reads_the_primary_key(
    make_customer: MakeCustomer,
    sessionmaker: async_sessionmaker[AsyncSession],
    lines: Any,
    index: str,
    primary_key: str,
) -> None:
    customer = await make_customer(balance="1")
    async with sessionmaker() as session:
        for statement in (lines._newest_first, lines._oldest_first):
            sql = _literal(statement, {"owner": customer.account_id, "last_id": 1, "size": 100, "skip": 0})
            plan = "\n".join(row[0] for row in (await session.execute(sa.text(f"EXPLAIN {sql}"))).all())
            assert index in plan, plan
            assert primary_key not in plan, plan
            # The bound is a filter: no index can start or stop at it.
            conditions = [line for line in plan.splitlines() if "Index Cond" in line or "Recheck Cond" in line]
            assert conditions, plan
            assert not [line for line in conditions if BOUND_IN_INDEX.search(line)], plan
            assert "id + 0) <= 1" in plan, plan
