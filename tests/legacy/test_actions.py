"""The four actions' response shapes, pagination, money rendering and key transports."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.ledger import service as ledger
from ordersvc.ledger.models import PaymentKind
from tests.conftest import MakeCustomer
from tests.legacy.helpers import call, snapshot

WIRE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
ORDER_REPLY = re.compile(rb'^\{"order":"([0-9A-F]{8})"\}$')


async def place(client: httpx.AsyncClient, key: str, quantity: int = 1000, email: str = "to@example.com") -> str:
    response = await call(client, key, {"action": "order", "email": email, "quantity": quantity})
    match = ORDER_REPLY.match(response.content)
    assert match, response.content
    return match.group(1).decode()


class TestBalance:
    @pytest.mark.parametrize(
        ("credit", "wire"),
        [("125.5", b"125.50"), ("10", b"10.00"), ("1.234", b"1.234"), ("0.001", b"0.001"), ("0.1", b"0.10")],
    )
    async def test_balance_is_a_number_with_at_least_two_decimals(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, credit: str, wire: bytes
    ) -> None:
        customer = await make_customer(balance=credit)
        response = await call(client, customer.api_key, {"action": "balance"})
        assert response.status_code == 200
        assert response.content == b'{"balance": ' + wire + b"}"

    async def test_new_account_balance_is_zero(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        assert (await call(client, customer.api_key, {"action": "balance"})).content == b'{"balance": 0.00}'

    async def test_unknown_fields_are_ignored(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="3")
        response = await call(client, customer.api_key, {"action": "balance", "page": "x", "extra": [1, 2]})
        assert response.content == b'{"balance": 3.00}'


class TestOrder:
    async def test_order_debits_price_and_records_a_payment(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="20")
        order_id = await place(client, customer.api_key, quantity=10000, email="billgates@microsoft.com")
        assert await snapshot(sessionmaker, customer) == ("10.00", 2, 1)

        payments = (await call(client, customer.api_key, {"action": "payments"})).json()
        assert payments["payments"][-1] == {
            "amount": -10.0,
            "created": payments["payments"][-1]["created"],
            "email": "billgates@microsoft.com",
            "order_id": order_id,
        }
        orders = (await call(client, customer.api_key, {"action": "orders"})).json()
        assert orders["orders"] == [
            {
                "id": order_id,
                "email": "billgates@microsoft.com",
                "created": orders["orders"][0]["created"],
                "price": 10.0,
                "status": "awaiting confirmation",
                "progress": 0,
            }
        ]

    async def test_price_is_exact_to_the_mill(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="5")
        await place(client, customer.api_key, quantity=1234)
        assert (await call(client, customer.api_key, {"action": "balance"})).content == b'{"balance": 3.766}'
        orders = await call(client, customer.api_key, {"action": "orders"})
        assert b'"price": 1.234,' in orders.content
        payments = await call(client, customer.api_key, {"action": "payments"})
        assert b'"amount": -1.234,' in payments.content

    @pytest.mark.parametrize("quantity", [500, "500", 50000, "50000", 10000.0])
    async def test_range_bounds_are_accepted(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, quantity: object
    ) -> None:
        customer = await make_customer(balance="50")
        response = await call(
            client, customer.api_key, {"action": "order", "email": "a@example.com", "quantity": quantity}
        )
        assert ORDER_REPLY.match(response.content)

    async def test_balance_equal_to_price_is_enough(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="0.5")
        await place(client, customer.api_key, quantity=500)
        assert (await call(client, customer.api_key, {"action": "balance"})).content == b'{"balance": 0.00}'

    async def test_order_ids_are_unique_and_unguessable(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="20")
        ids = [await place(client, customer.api_key, quantity=500) for _ in range(20)]
        assert len(set(ids)) == 20
        # Random, not a counter: consecutive ids are not neighbours.
        numbers = [int(i, 16) for i in ids]
        assert sum(1 for a, b in itertools.pairwise(numbers) if abs(a - b) < 1000) < 3


class TestPagination:
    async def orders_page(self, client: httpx.AsyncClient, key: str, **params: object) -> dict:
        response = await call(client, key, {"action": "orders", **params})
        body: dict = response.json()
        return body

    async def test_empty_history_is_page_one_of_nothing(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer()
        for action in ("orders", "payments"):
            response = await call(client, customer.api_key, {"action": action})
            assert response.content == b'{"' + action.encode() + b'": [], "page": 1, "per_page": 100, "total": 0}'

    async def test_default_is_the_last_page_oldest_first(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="10")
        ids = [await place(client, customer.api_key, quantity=500) for _ in range(5)]
        body = await self.orders_page(client, customer.api_key, per_page=2)
        assert (body["page"], body["per_page"], body["total"]) == (3, 2, 5)
        assert [o["id"] for o in body["orders"]] == ids[4:]
        walked = []
        for page in (1, 2, 3):
            walked += [
                o["id"] for o in (await self.orders_page(client, customer.api_key, page=page, per_page=2))["orders"]
            ]
        assert walked == ids

    async def test_exact_multiple_has_a_full_last_page(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="10")
        ids = [await place(client, customer.api_key, quantity=500) for _ in range(4)]
        body = await self.orders_page(client, customer.api_key, per_page=2)
        assert (body["page"], body["total"], [o["id"] for o in body["orders"]]) == (2, 4, ids[2:])

    async def test_page_past_the_end_is_empty(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="10")
        await place(client, customer.api_key, quantity=500)
        for page in (2, "3", 10**12):
            body = await self.orders_page(client, customer.api_key, page=page, per_page=1)
            assert body == {"orders": [], "page": int(page), "per_page": 1, "total": 1}

    async def test_huge_page_is_echoed_exactly(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="10")
        huge = "1" + "0" * 30
        body = await self.orders_page(client, customer.api_key, page=huge)
        assert body == {"orders": [], "page": int(huge), "per_page": 100, "total": 0}

    async def test_numeric_strings_and_null_parameters(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="10")
        ids = [await place(client, customer.api_key, quantity=500) for _ in range(3)]
        body = await self.orders_page(client, customer.api_key, page="1", per_page="2")
        assert [o["id"] for o in body["orders"]] == ids[:2]
        body = await self.orders_page(client, customer.api_key, page=None, per_page=None)
        assert (body["page"], body["per_page"]) == (1, 100)
        body = await self.orders_page(client, customer.api_key, per_page=100)
        assert body["per_page"] == 100

    async def test_payments_pages_oldest_first_and_default_last(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="10")
        async with sessionmaker.begin() as session:
            for amount in (1, 2, 3, 4, 5, 6, 7):
                await ledger.post_payment(
                    session, account_id=customer.account_id, kind=PaymentKind.CREDIT, amount_mills=amount * 1000
                )
        amounts = []
        for page in (1, 2, 3):
            body = (await call(client, customer.api_key, {"action": "payments", "page": page, "per_page": 3})).json()
            amounts += [p["amount"] for p in body["payments"]]
        assert amounts == [10, 1, 2, 3, 4, 5, 6, 7]
        last = (await call(client, customer.api_key, {"action": "payments", "per_page": 3})).json()
        assert (last["page"], [p["amount"] for p in last["payments"]]) == (3, [6, 7])

    async def test_deep_page_read_backwards_matches_forwards(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer()
        async with sessionmaker.begin() as session:
            for amount in range(1, 251):
                await ledger.post_payment(
                    session, account_id=customer.account_id, kind=PaymentKind.CREDIT, amount_mills=amount
                )
        seen = []
        for page in range(1, 27):
            body = (await call(client, customer.api_key, {"action": "payments", "page": page, "per_page": 10})).json()
            seen += [round(p["amount"] * 1000) for p in body["payments"]]
        assert seen == list(range(1, 251))


class TestWireFormat:
    async def test_created_is_utc_seconds(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="5")
        await place(client, customer.api_key, quantity=500)
        order = (await call(client, customer.api_key, {"action": "orders"})).json()["orders"][0]
        payment = (await call(client, customer.api_key, {"action": "payments"})).json()["payments"][0]
        for created in (order["created"], payment["created"]):
            assert WIRE_TIME.match(created)
            moment = datetime.strptime(created, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            assert abs(datetime.now(UTC) - moment) < timedelta(minutes=2)

    async def test_key_order_and_separators_of_lists(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="50")
        order_id = await place(client, customer.api_key, quantity=10000, email="user@example.com")
        orders = (await call(client, customer.api_key, {"action": "orders", "page": 1, "per_page": 10})).text
        assert re.fullmatch(
            r'\{"orders": \[\{"id": "' + order_id + r'", "email": "user@example.com", "created": "[0-9: -]{19}", '
            r'"price": 10\.00, "status": "awaiting confirmation", "progress": 0\}\], '
            r'"page": 1, "per_page": 10, "total": 1\}',
            orders,
        ), orders
        payments = (await call(client, customer.api_key, {"action": "payments", "page": 1, "per_page": 10})).text
        assert re.fullmatch(
            r'\{"payments": \[\{"amount": 50\.00, "created": "[0-9: -]{19}"\}, \{"amount": -10\.00, '
            r'"created": "[0-9: -]{19}", "email": "user@example.com", "order_id": "' + order_id + r'"\}\], '
            r'"page": 1, "per_page": 10, "total": 2\}',
            payments,
        ), payments

    async def test_non_ascii_email_is_escaped_like_php(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="5")
        await place(client, customer.api_key, quantity=500, email="jürgen@example.de")
        orders = await call(client, customer.api_key, {"action": "orders"})
        assert b'"email": "j\\u00fcrgen@example.de"' in orders.content
        assert orders.json()["orders"][0]["email"] == "jürgen@example.de"


class TestKeyTransports:
    async def test_key_in_query(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="1")
        assert (await call(client, customer.api_key, {"action": "balance"})).content == b'{"balance": 1.00}'

    async def test_key_in_body(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="1")
        body = {"action": "balance", "key": customer.api_key}
        assert (await call(client, None, body)).content == b'{"balance": 1.00}'

    async def test_key_in_bearer_header(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="1")
        headers = {"Authorization": f"Bearer {customer.api_key}"}
        assert (await call(client, None, {"action": "balance"}, headers=headers)).content == b'{"balance": 1.00}'

    async def test_key_in_x_api_key_header(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="1")
        headers = {"X-API-Key": customer.api_key}
        assert (await call(client, None, {"action": "balance"}, headers=headers)).content == b'{"balance": 1.00}'

    async def test_query_key_is_used_first(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        first, second = await make_customer(balance="1"), await make_customer(balance="2")
        body = {"action": "balance", "key": second.api_key}
        assert (await call(client, first.api_key, body)).content == b'{"balance": 1.00}'

    async def test_revoked_key_is_refused(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        from ordersvc.accounts import service as accounts

        customer = await make_customer(balance="1")
        async with sessionmaker.begin() as session:
            await accounts.revoke_api_key(session, prefix=customer.api_key[:12])
        assert (await call(client, customer.api_key, {"action": "balance"})).content == b'{"error":"Invalid key."}'

    async def test_right_prefix_wrong_secret_is_refused(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="1")
        forged = customer.api_key[:12] + "A" * (len(customer.api_key) - 12)
        assert (await call(client, forged, {"action": "balance"})).content == b'{"error":"Invalid key."}'


class TestBodyEncodings:
    @pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "foo/bar"])
    async def test_json_body_whatever_the_content_type(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, content_type: str | None
    ) -> None:
        customer = await make_customer(balance="2")
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = await client.post(f"/api?key={customer.api_key}", content=b'{"action":"balance"}', headers=headers)
        assert response.content == b'{"balance": 2.00}'

    async def test_urlencoded_form(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="2")
        form = {"action": "order", "email": "a@example.com", "quantity": "1000", "key": customer.api_key}
        assert ORDER_REPLY.match((await client.post("/api", data=form)).content)
        assert (await client.post("/api", data={"action": "balance", "key": customer.api_key})).content == (
            b'{"balance": 1.00}'
        )

    async def test_multipart_form(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="2")
        response = await client.post(
            f"/api?key={customer.api_key}", data={"action": "balance"}, files={"dummy": ("x.txt", b"x")}
        )
        assert response.content == b'{"error":"Invalid params."}'
        boundary = "xyzzy"
        body = f'--{boundary}\r\nContent-Disposition: form-data; name="action"\r\n\r\nbalance\r\n--{boundary}--\r\n'
        response = await client.post(
            f"/api?key={customer.api_key}",
            content=body.encode(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.content == b'{"balance": 2.00}'

    @pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
    async def test_urlencoded_form_whatever_the_content_type(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, content_type: str | None
    ) -> None:
        customer = await make_customer(balance="2")
        headers = {} if content_type is None else {"Content-Type": content_type}
        body = f"action=balance&key={customer.api_key}".encode()
        assert (await client.post("/api", content=body, headers=headers)).content == b'{"balance": 2.00}'

    async def test_trailing_slash_endpoint_answers_without_redirect(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="2")
        response = await client.post(f"/api/?key={customer.api_key}", json={"action": "balance"})
        assert (response.status_code, response.content) == (200, b'{"balance": 2.00}')

    async def test_malformed_form_is_invalid_params(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api", content=b"a=1&&=&b", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.content == b'{"error":"Invalid params."}'


class TestIsolation:
    async def test_accounts_see_only_their_own_data(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        alice, bob = await make_customer(balance="10"), await make_customer(balance="3")
        await place(client, alice.api_key, quantity=2000, email="friend@example.com")
        assert (await call(client, bob.api_key, {"action": "balance"})).content == b'{"balance": 3.00}'
        assert (await call(client, bob.api_key, {"action": "orders"})).json()["total"] == 0
        assert [p["amount"] for p in (await call(client, bob.api_key, {"action": "payments"})).json()["payments"]] == [
            3.0
        ]
        assert (await call(client, alice.api_key, {"action": "balance"})).content == b'{"balance": 8.00}'


class TestKeyTransportEdges:
    async def test_empty_query_key_falls_through_to_the_body(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="1")
        body = {"action": "balance", "key": customer.api_key}
        assert (await call(client, "", body)).content == b'{"balance": 1.00}'

    async def test_bearer_scheme_is_case_insensitive(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="1")
        headers = {"Authorization": f"bearer {customer.api_key}"}
        assert (await call(client, None, {"action": "balance"}, headers=headers)).content == b'{"balance": 1.00}'

    async def test_basic_auth_is_not_a_key(self, client: httpx.AsyncClient) -> None:
        headers = {"Authorization": "Basic dXNlcjpwYXNz"}
        assert (await call(client, None, {"action": "balance"}, headers=headers)).content == b'{"error":"Invalid key."}'
