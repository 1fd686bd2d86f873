"""Cancellation with exact refunds, the transition history, and legacy status look-ups."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.orders.lifecycle import refund_mills
from ordersvc.orders.models import Order
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
            (None, "awaiting confirmation", "placed"),
            ("awaiting confirmation", "canceled", "canceled by the customer"),
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
            assert (response.json()["order"]["status"], response.json()["refund"]) == ("in progress", "0.00")
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


class TestRefundRounding:
    def test_refund_is_the_undelivered_share_rounded_down(self) -> None:
        for quantity in range(500, 50_001, 499):
            for delivered in {0, 1, quantity // 3, quantity // 2, quantity - 1, quantity}:
                order = Order(public_id="X", account_id=1, email="x", quantity=quantity, price_mills=quantity,
                              delivered=delivered)  # fmt: skip
                refund = refund_mills(order)
                assert refund * quantity <= order.price_mills * (quantity - delivered)
                assert (refund + 1) * quantity > order.price_mills * (quantity - delivered)
                assert 0 <= refund <= order.price_mills
                assert refund == quantity - delivered  # price = quantity mills: exact

    def test_rounding_with_a_price_that_does_not_divide(self) -> None:
        order = Order(public_id="X", account_id=1, email="x", quantity=3, price_mills=1000, delivered=1)
        assert refund_mills(order) == 666  # 666.67 rounded down: never more than was paid for


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
