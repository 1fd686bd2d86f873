"""REST /v1/balance and /v1/payments."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.ledger import service as ledger
from ordersvc.ledger.models import PaymentKind
from tests.conftest import MakeCustomer
from tests.orders.test_endpoints import auth, create


class TestBalance:
    async def test_balance_is_a_decimal_string(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="125.5")
        response = await client.get("/v1/balance", headers=auth(customer))
        assert response.json() == {"balance": "125.50", "currency": "USD"}
        await create(client, customer, quantity=1234)
        assert (await client.get("/v1/balance", headers=auth(customer))).json()["balance"] == "124.266"


class TestPayments:
    async def test_newest_first_with_order_details(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="10")
        order = (await create(client, customer, quantity=2500)).json()
        data = (await client.get("/v1/payments", headers=auth(customer))).json()["data"]
        assert [(p["kind"], p["amount"], p["order_id"], p["email"]) for p in data] == [
            ("order", "-2.50", order["id"], "to@example.com"),
            ("credit", "10.00", None, None),
        ]

    async def test_kind_filter_and_cursor_walk(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="10")
        async with sessionmaker.begin() as session:
            for mills in range(1, 6):
                await ledger.post_payment(
                    session, account_id=customer.account_id, kind=PaymentKind.REFUND, amount_mills=mills
                )
        await create(client, customer, quantity=500)
        refunds, cursor = [], None
        while True:
            params = {"kind": "refund", "limit": 2, **({"starting_after": cursor} if cursor else {})}
            page = (await client.get("/v1/payments", params=params, headers=auth(customer))).json()
            refunds += [p["amount"] for p in page["data"]]
            if not page["has_more"]:
                break
            cursor = page["data"][-1]["id"]
        assert refunds == ["0.005", "0.004", "0.003", "0.002", "0.001"]
        first_page = (await client.get("/v1/payments", params={"limit": 2}, headers=auth(customer))).json()
        back = await client.get(
            "/v1/payments", params={"ending_before": first_page["data"][-1]["id"]}, headers=auth(customer)
        )
        assert [p["id"] for p in back.json()["data"]] == [first_page["data"][0]["id"]]
        assert back.json()["has_more"] is False

    @pytest.mark.parametrize(
        "params", [{"kind": "bogus"}, {"starting_after": "x"}, {"starting_after": 2**63}, {"limit": 1000}]
    )
    async def test_bad_parameters_are_422(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, params: dict[str, object]
    ) -> None:
        customer = await make_customer()
        assert (await client.get("/v1/payments", params=params, headers=auth(customer))).status_code == 422

    async def test_another_accounts_payment_is_not_a_cursor(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        owner, other = await make_customer(balance="1"), await make_customer()
        payment_id = (await client.get("/v1/payments", headers=auth(owner))).json()["data"][0]["id"]
        response = await client.get("/v1/payments", params={"starting_after": payment_id}, headers=auth(other))
        assert (response.status_code, response.json()["code"]) == (422, "invalid_cursor")
