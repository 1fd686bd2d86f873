"""The ledger: insert-only, signed by kind, running balance equal to the sum of payments."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.ledger import service as ledger
from ordersvc.ledger.models import Payment, PaymentKind
from tests.conftest import MakeCustomer


class TestInsertOnly:
    @pytest.mark.parametrize(
        "statement",
        ["UPDATE payments SET amount_mills = 1 WHERE account_id = :id", "DELETE FROM payments WHERE account_id = :id"],
    )
    async def test_payments_cannot_be_changed_or_deleted(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession], statement: str
    ) -> None:
        customer = await make_customer(balance="5")
        async with sessionmaker() as session:
            with pytest.raises(DBAPIError, match="payments are insert-only"):
                await session.execute(sa.text(statement), {"id": customer.account_id})

    @pytest.mark.parametrize(("kind", "amount"), [("credit", -1), ("refund", 0), ("order", 5), ("bogus", 5)])
    async def test_database_refuses_a_sign_that_does_not_match_the_kind(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession], kind: str, amount: int
    ) -> None:
        customer = await make_customer(balance="5")
        async with sessionmaker() as session:
            with pytest.raises(IntegrityError):
                await session.execute(
                    sa.insert(Payment).values(account_id=customer.account_id, kind=kind, amount_mills=amount)
                )

    @pytest.mark.parametrize(("kind", "amount"), [(PaymentKind.CREDIT, -5), (PaymentKind.ORDER, 5)])
    async def test_service_refuses_a_sign_that_does_not_match_the_kind(
        self,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        kind: PaymentKind,
        amount: int,
    ) -> None:
        customer = await make_customer(balance="5")
        async with sessionmaker() as session:
            with pytest.raises(ValueError, match="cannot be"):
                await ledger.post_payment(session, account_id=customer.account_id, kind=kind, amount_mills=amount)

    async def test_balance_can_never_go_negative_in_the_database(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="1")
        async with sessionmaker() as session:
            with pytest.raises(IntegrityError, match="balance_not_negative"):
                # Skipping lock_for_debit on purpose: the constraint is the last line of defence.
                await ledger.post_payment(
                    session, account_id=customer.account_id, kind=PaymentKind.ORDER, amount_mills=-1001
                )


class TestRunningBalance:
    async def test_running_balance_equals_sum_of_payments(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="10")
        async with sessionmaker.begin() as session:
            for amount in (1, 999, 1000, 123_456):
                await ledger.post_payment(
                    session, account_id=customer.account_id, kind=PaymentKind.CREDIT, amount_mills=amount
                )
            await ledger.post_payment(session, account_id=customer.account_id, kind=PaymentKind.REFUND, amount_mills=7)
        async with sessionmaker() as session:
            total = (
                await session.execute(
                    sa.select(sa.func.sum(Payment.amount_mills)).where(Payment.account_id == customer.account_id)
                )
            ).scalar_one()
            assert await ledger.get_balance(session, account_id=customer.account_id) == total == 10_000 + 125_463

    async def test_reading_the_balance_does_not_touch_the_history(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """The balance is one primary-key row, so its cost does not grow with the number of
        payments (bench/ measures it; here we prove which rows are read)."""
        customer = await make_customer(balance="1")
        statements: list[str] = []

        def record(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        engine = sessionmaker.kw["bind"].sync_engine
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            async with sessionmaker() as session:
                await ledger.get_balance(session, account_id=customer.account_id)
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        balance_reads = [s for s in statements if "balance_mills" in s]
        assert len(balance_reads) == 1
        assert "payments" not in balance_reads[0]
        assert "accounts.id = " in balance_reads[0]

    async def test_verify_reports_a_tampered_balance(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="5")
        async with sessionmaker() as session:  # rolled back at the end of the block
            await session.execute(
                sa.text("UPDATE accounts SET balance_mills = balance_mills + 1 WHERE id = :id"),
                {"id": customer.account_id},
            )
            mismatches = await ledger.verify(session)
            assert [(m.account_id, m.balance_mills, m.payments_sum_mills) for m in mismatches] == [
                (customer.account_id, 5001, 5000)
            ]
            await session.rollback()
            assert await ledger.verify(session) == []

    async def test_account_without_payments_verifies_at_zero(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer()
        async with sessionmaker() as session:
            await session.execute(
                sa.text("UPDATE accounts SET balance_mills = 3 WHERE id = :id"), {"id": customer.account_id}
            )
            assert [m.payments_sum_mills for m in await ledger.verify(session)] == [0]
            await session.rollback()


class TestCounters:
    async def test_payments_and_orders_are_counted_with_the_balance(
        self, client, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="5")
        for _ in range(3):
            placed = await client.post(
                f"/api?key={customer.api_key}", json={"action": "order", "email": "c@example.com", "quantity": 500}
            )
            assert placed.text.startswith('{"order":')
        order_id = placed.json()["order"]
        await client.post(f"/api?key={customer.api_key}", json={"action": "cancel", "order": order_id})
        async with sessionmaker() as session:
            row = (
                await session.execute(
                    sa.text("SELECT payments_count, orders_count FROM accounts WHERE id = :id"),
                    {"id": customer.account_id},
                )
            ).one()
            assert tuple(row) == (5, 3)  # a credit, three debits, a refund; three orders
            assert await ledger.verify_counts(session) == []
        listed = (await client.post(f"/api?key={customer.api_key}", json={"action": "payments"})).json()
        assert (listed["total"], len(listed["payments"])) == (5, 5)
        assert (await client.post(f"/api?key={customer.api_key}", json={"action": "orders"})).json()["total"] == 3

    async def test_verify_counts_reports_a_tampered_counter(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="5")
        async with sessionmaker() as session:  # rolled back at the end of the block
            await session.execute(
                sa.text("UPDATE accounts SET orders_count = 7 WHERE id = :id"), {"id": customer.account_id}
            )
            assert [(m.account_id, m.what, m.counted, m.actual) for m in await ledger.verify_counts(session)] == [
                (customer.account_id, "orders", 7, 0)
            ]
            await session.rollback()
