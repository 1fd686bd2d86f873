"""The order's transitions (one table, one function), cancellation with exact refunds, the
transition history, and legacy status look-ups."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import cast

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts.models import Account
from ordersvc.money import format_usd
from ordersvc.orders import lifecycle
from ordersvc.orders.models import FINAL_STATUSES, OPEN_STATUSES, Order, OrderStatus
from tests.conftest import MakeCustomer
from tests.legacy.helpers import call, snapshot
from tests.orders.test_endpoints import auth, create


async def set_progress(maker: async_sessionmaker[AsyncSession], order_id: str, status: str, delivered: int) -> None:
    """Stand-in for a fulfilment worker (a later issue): move an order on directly."""
    async with maker.begin() as session:
        await session.execute(
            sa.text("UPDATE orders SET status = :s, delivered = :d, progress = (:d * 100 / quantity) "
                    "WHERE public_id = :id"),
            {"s": status, "d": delivered, "id": order_id},
        )  # fmt: skip


class TestCancel:
    async def test_pending_order_is_canceled_with_a_full_refund(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer(balance="20")
        order = (await create(client, customer, quantity=1234)).json()
        response = await client.post(f"/v1/orders/{order['id']}/cancel", headers=auth(customer))
        assert response.status_code == 200
        assert (response.json()["order"]["status"], response.json()["refund"]) == ("canceled", "1.234")
        assert await snapshot(sessionmaker, customer) == ("20.00", 3, 1)
        payments = (await call(client, customer.api_key, {"action": "payments"})).json()["payments"]
        assert payments[-1] | {"created": "-"} == {
            "amount": 1.234, "created": "-", "email": "to@example.com", "order_id": order["id"],
        }  # fmt: skip
        events = (await client.get(f"/v1/orders/{order['id']}/events", headers=auth(customer))).json()["data"]
        assert [(e["from_status"], e["to_status"], e["reason"]) for e in events] == [
            (None, "awaiting_confirmation", "placed"),
            ("awaiting_confirmation", "canceled", "canceled by the customer"),
        ]

    async def test_cancelling_twice_refunds_once(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer(balance="5")
        order_id = (await create(client, customer)).json()["id"]
        responses = await asyncio.gather(
            *(client.post(f"/v1/orders/{order_id}/cancel", headers=auth(customer)) for _ in range(10))
        )
        assert Counter(r.status_code for r in responses) == {200: 1, 409: 9}
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {"order_not_cancelable"}
        assert await snapshot(sessionmaker, customer) == ("5.00", 3, 1)

    async def test_in_progress_cancel_is_recorded_for_the_worker_without_refund_yet(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer(balance="5")
        order_id = (await create(client, customer, quantity=2000)).json()["id"]
        await set_progress(sessionmaker, order_id, "in progress", 500)
        for _ in range(2):
            response = await client.post(f"/v1/orders/{order_id}/cancel", headers=auth(customer))
            assert (response.json()["order"]["status"], response.json()["refund"]) == ("in_progress", "0.00")
        async with sessionmaker() as session:
            order = (await session.execute(sa.select(Order).where(Order.public_id == order_id))).scalar_one()
        assert order.cancel_requested_at is not None
        events = (await client.get(f"/v1/orders/{order_id}/events", headers=auth(customer))).json()["data"]
        assert [e["reason"] for e in events] == ["placed", "cancellation requested by the customer"]
        assert await snapshot(sessionmaker, customer) == ("3.00", 2, 1)

    @pytest.mark.parametrize("status", ["completed", "partial", "canceled"])
    async def test_finished_orders_cannot_be_canceled(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, status: str
    ) -> None:
        customer = await make_customer(balance="5")
        order_id = (await create(client, customer)).json()["id"]
        await set_progress(sessionmaker, order_id, status, 1000 if status == "completed" else 0)
        response = await client.post(f"/v1/orders/{order_id}/cancel", headers=auth(customer))
        assert (response.status_code, response.json()["code"]) == (409, "order_not_cancelable")

    async def test_another_accounts_order_is_404(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        owner, other = await make_customer(balance="5"), await make_customer()
        order_id = (await create(client, owner)).json()["id"]
        assert (await client.post(f"/v1/orders/{order_id}/cancel", headers=auth(other))).status_code == 404
        assert (await client.get(f"/v1/orders/{order_id}/events", headers=auth(other))).status_code == 404


class TestRefunds:
    """The refund is the database's `ordersvc_end_order` (price x (quantity - delivered) /
    quantity, rounded down); with price = quantity mills, exactly quantity - delivered mills."""

    @pytest.mark.parametrize(("delivered", "ends"), [(0, "canceled"), (1, "partial"), (411, "partial"),
                                                     (1233, "partial"), (1234, "completed")])  # fmt: skip
    async def test_an_order_ends_at_its_delivered_count_refunding_the_rest(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, delivered: int, ends: str
    ) -> None:
        customer = await make_customer(balance="5")
        order_id = (await create(client, customer, quantity=1234)).json()["id"]
        await set_progress(sessionmaker, order_id, "in progress", delivered)
        async with sessionmaker.begin() as session:
            order = (await session.execute(sa.select(Order).where(Order.public_id == order_id))).scalar_one()
            account = await session.get_one(Account, customer.account_id)
            assert account.balance_mills == 5000 - 1234
            refund = await lifecycle.finish(session, order, "test")
            assert (refund, order.status) == (1234 - delivered, ends)  # the object shows the new state
            assert "balance_mills" in sa.inspect(account).unloaded  # the loaded account forgot its balance
            await session.refresh(account)
            assert account.balance_mills == 5000 - delivered
        assert await snapshot(sessionmaker, customer) == (format_usd(5000 - delivered), 3 if delivered < 1234 else 2, 1)


def _unused_session() -> AsyncSession:
    class Unused:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"a refused transition touched the session ({name})")

    return cast(AsyncSession, Unused())


class TestTransitionTable:
    def test_every_status_has_its_row_and_finished_orders_go_nowhere(self) -> None:
        assert set(lifecycle.TRANSITIONS) == set(OrderStatus)
        assert {s for s, to in lifecycle.TRANSITIONS.items() if not to} == set(FINAL_STATUSES) == lifecycle.ENDINGS
        assert set(OPEN_STATUSES) == lifecycle.CANCELABLE

    @pytest.mark.parametrize(
        ("from_status", "to_status"),
        [(f, t) for f in OrderStatus for t in OrderStatus if t not in lifecycle.TRANSITIONS[f]],
        ids=str,
    )
    async def test_a_transition_the_table_does_not_allow_is_refused(
        self, from_status: OrderStatus, to_status: OrderStatus
    ) -> None:
        order = Order(id=1, public_id="A7E17A3E", account_id=1, email="x", quantity=500, price_mills=500,
                      status=from_status.value)  # fmt: skip
        with pytest.raises(lifecycle.TransitionNotAllowed):
            await lifecycle.transition(_unused_session(), order, to_status, "test")
        assert order.status == from_status.value

    @pytest.mark.parametrize("from_status", list(OrderStatus), ids=str)
    async def test_a_cancellation_is_requested_only_of_an_order_in_progress_staying_there(
        self, from_status: OrderStatus
    ) -> None:
        order = Order(id=1, public_id="A7E17A3E", account_id=1, email="x", quantity=500, price_mills=500,
                      status=from_status.value)  # fmt: skip
        for to_status in OrderStatus:
            if (from_status, to_status) == (OrderStatus.IN_PROGRESS, OrderStatus.IN_PROGRESS):
                continue
            with pytest.raises(lifecycle.TransitionNotAllowed):
                await lifecycle.transition(_unused_session(), order, to_status, "test", cancel_requested=True)

    def test_the_allowed_transitions(self) -> None:
        s = OrderStatus
        assert {(f, t) for f, to in lifecycle.TRANSITIONS.items() for t in to} == {
            (s.AWAITING_CONFIRMATION, s.PENDING), (s.AWAITING_CONFIRMATION, s.CANCELED),
            (s.PENDING, s.IN_PROGRESS), (s.PENDING, s.CANCELED),
            (s.IN_PROGRESS, s.IN_PROGRESS), (s.IN_PROGRESS, s.COMPLETED), (s.IN_PROGRESS, s.PARTIAL),
            (s.IN_PROGRESS, s.CANCELED),
        }  # fmt: skip


SRC = Path(__file__).resolve().parents[2] / "src" / "ordersvc"


class TestOneWayIn:
    def test_no_module_but_the_lifecycle_moves_an_order(self) -> None:
        """`set_status` and `end_order` (the only writers of `orders.status` in Python) are
        called by `orders/lifecycle.py` alone."""
        callers = {
            str(path.relative_to(SRC))
            for path in SRC.rglob("*.py")
            if re.search(r"\b(set_status|end_order)\(", path.read_text(encoding="utf-8"))
        }
        assert callers == {"orders/lifecycle.py", "orders/repository.py"}

    def test_orders_do_not_import_consent(self) -> None:
        importers = [
            str(path.relative_to(SRC))
            for path in (SRC / "orders").rglob("*.py")
            if re.search(r"\bordersvc\.consent\b|from ordersvc import consent", path.read_text(encoding="utf-8"))
        ]
        assert importers == []


class TestLegacy:
    async def test_cancel_and_status(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="20")
        first = (await create(client, customer, quantity=10000)).json()["id"]
        second = (await create(client, customer, quantity=500)).json()["id"]
        status = await call(client, customer.api_key, {"action": "status", "order": first})
        assert status.content == b'{"status": "awaiting confirmation", "progress": 0, "remains": 10000}'
        canceled = await call(client, customer.api_key, {"action": "cancel", "order": first})
        assert canceled.content == b'{"order":"' + first.encode() + b'","status":"canceled","refund":10.00}'
        again = await call(client, customer.api_key, {"action": "cancel", "order": first})
        assert again.json() == {"error": "This order is already finished and can no longer be canceled."}
        several = await call(
            client, customer.api_key, {"action": "status", "orders": f"{first},{second},00000000,nonsense"}
        )
        assert several.json() == {
            first: {"status": "canceled", "progress": 0, "remains": 10000},
            second: {"status": "awaiting confirmation", "progress": 0, "remains": 500},
            "00000000": {"error": "Incorrect order ID."},
            "nonsense": {"error": "Incorrect order ID."},
        }

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"action": "status"}, {"error": "Invalid params."}),
            ({"action": "status", "order": 5}, {"error": "Invalid params."}),
            ({"action": "status", "order": "A", "orders": "B"}, {"error": "Invalid params."}),
            ({"action": "status", "orders": ""}, {"error": "Invalid params."}),
            ({"action": "status", "orders": ",".join(f"{i:08X}" for i in range(101))}, {"error": "Invalid params."}),
            ({"action": "status", "order": "00000000"}, {"error": "Incorrect order ID."}),
            ({"action": "cancel"}, {"error": "Invalid params."}),
            ({"action": "cancel", "order": ["x"]}, {"error": "Invalid params."}),
            ({"action": "cancel", "order": "00000000"}, {"error": "Incorrect order ID."}),
            ({"action": "cancel", "order": "\u0000"}, {"error": "Incorrect order ID."}),
        ],
    )
    async def test_errors(self, client: httpx.AsyncClient, make_customer: MakeCustomer, body, expected) -> None:
        customer = await make_customer()
        assert (await call(client, customer.api_key, body)).json() == expected

    async def test_another_accounts_order_is_incorrect(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        owner, other = await make_customer(balance="5"), await make_customer()
        order_id = (await create(client, owner)).json()["id"]
        for action in ("status", "cancel"):
            response = await call(client, other.api_key, {"action": action, "order": order_id})
            assert response.json() == {"error": "Incorrect order ID."}
