"""`POST /api/v2`, the panel API v2 dialect: every action and every refusal, form-encoded as
panel clients send it (and JSON), each refusal HTTP 200 `{"error": ...}` that changes nothing."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.consent import service as consent
from ordersvc.panel.wire import panel_id, public_id_of
from tests.conftest import MakeCustomer
from tests.legacy.helpers import snapshot
from tests.support import Customer, confirm_recipient, unique_email


async def v2(client: httpx.AsyncClient, customer: Customer | None, **fields: object) -> httpx.Response:
    data = {"key": customer.api_key if customer else "osk_nope", **{k: str(v) for k, v in fields.items()}}
    response = await client.post("/api/v2", data=data)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response


async def set_state(maker: async_sessionmaker[AsyncSession], public_id: str, status: str, delivered: int) -> None:
    async with maker.begin() as session:
        if status in ("completed", "partial", "canceled"):
            await session.execute(
                sa.text("UPDATE orders SET status = 'in progress', delivered = :d WHERE public_id = :p"),
                {"d": delivered, "p": public_id},
            )
            await session.execute(
                sa.text("SELECT ordersvc_end_order(id, :s, 'test') FROM orders WHERE public_id = :p"),
                {"s": status, "p": public_id},
            )
        else:
            await session.execute(
                sa.text("UPDATE orders SET status = :s, delivered = :d WHERE public_id = :p"),
                {"s": status, "d": delivered, "p": public_id},
            )


class TestIds:
    def test_one_to_one_with_public_ids(self) -> None:
        assert panel_id("A7E17A3E") == 2816571966
        assert public_id_of(2816571966) == "A7E17A3E"
        assert public_id_of("2816571966") == "A7E17A3E"
        assert public_id_of(0) == "00000000"
        assert public_id_of(2**32 - 1) == "FFFFFFFF"
        for bad in (-1, 2**32, "x", "1.5", None, True):
            assert public_id_of(bad) is None


class TestActions:
    async def test_services(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        response = await v2(client, customer, action="services")
        assert response.content == (
            b'[{"service":1,"name":"Order to a confirmed mailbox","type":"Default","category":"Email",'
            b'"rate":"1.00","min":"500","max":"50000","refill":false,"cancel":true}]'
        )

    async def test_balance(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="100.845")
        assert (await v2(client, customer, action="balance")).content == b'{"balance":"100.845","currency":"USD"}'

    async def test_add_then_status_then_cancel(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="20")
        placed = (await v2(client, customer, action="add", service=1, link="to@example.com", quantity=10000)).json()
        assert isinstance(placed["order"], int)
        public_id = public_id_of(placed["order"])
        assert public_id is not None
        rest = await client.get(f"/v1/orders/{public_id}", headers={"Authorization": f"Bearer {customer.api_key}"})
        assert rest.status_code == 200  # the same order in REST
        status = await v2(client, customer, action="status", order=placed["order"])
        assert status.content == (
            b'{"charge":"10.00","start_count":"0","status":"Pending","remains":"10000","currency":"USD"}'
        )
        cancel = await v2(client, customer, action="cancel", orders=f"{placed['order']},12345")
        assert cancel.json() == [
            {"order": placed["order"], "cancel": 1},
            {"order": 12345, "cancel": {"error": "Incorrect order ID"}},
        ]
        again = await v2(client, customer, action="cancel", orders=str(placed["order"]))
        assert again.json() == [
            {
                "order": placed["order"],
                "cancel": {"error": "This order is already finished and can no longer be canceled."},
            }
        ]
        status = (await v2(client, customer, action="status", order=placed["order"])).json()
        assert status == {
            "charge": "0.00",
            "start_count": "0",
            "status": "Canceled",
            "remains": "10000",
            "currency": "USD",
        }
        assert await snapshot(sessionmaker, customer) == ("20.00", 3, 1)

    @pytest.mark.parametrize(
        ("status", "delivered", "shown", "charge", "remains"),
        [
            ("in progress", 3700, "In progress", "10.00", "6300"),
            ("partial", 3700, "Partial", "3.70", "6300"),
            ("completed", 10000, "Completed", "10.00", "0"),
        ],
    )
    async def test_status_names_and_charges(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        status: str,
        delivered: int,
        shown: str,
        charge: str,
        remains: str,
    ) -> None:
        customer = await make_customer(balance="20")
        to = unique_email("to")
        await confirm_recipient(sessionmaker, customer, to)
        placed = (await v2(client, customer, action="add", service="1", link=to, quantity="10000")).json()
        public_id = public_id_of(placed["order"])
        assert public_id is not None
        await set_state(sessionmaker, public_id, status, delivered)
        found = (await v2(client, customer, action="status", order=placed["order"])).json()
        assert found == {"charge": charge, "start_count": "0", "status": shown, "remains": remains, "currency": "USD"}

    async def test_several_statuses(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer, other = await make_customer(balance="5"), await make_customer(balance="5")
        mine = (await v2(client, customer, action="add", service=1, link="a@example.com", quantity=500)).json()["order"]
        theirs = (await v2(client, other, action="add", service=1, link="a@example.com", quantity=500)).json()["order"]
        found = (await v2(client, customer, action="status", orders=f"{mine}, {theirs},abc,{mine}")).json()
        pending = {"charge": "0.50", "start_count": "0", "status": "Pending", "remains": "500", "currency": "USD"}
        missing = {"error": "Incorrect order ID"}
        assert found == {str(mine): pending, str(theirs): missing, "abc": missing}

    async def test_refill_has_none(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        assert (await v2(client, customer, action="refill", order=1)).content == (
            b'{"error":"Refill is disabled for this service"}'
        )
        assert (await v2(client, customer, action="refill", orders="1,2")).json() == [
            {"order": 1, "refill": {"error": "Refill is disabled for this service"}},
            {"order": 2, "refill": {"error": "Refill is disabled for this service"}},
        ]
        assert (await v2(client, customer, action="refill_status", refill=7)).content == (
            b'{"error":"Incorrect refill ID"}'
        )
        assert (await v2(client, customer, action="refill_status", refills="7")).json() == [
            {"refill": 7, "status": {"error": "Incorrect refill ID"}}
        ]

    async def test_json_body_and_request_id(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="5")
        body = {"key": customer.api_key, "action": "add", "service": 1, "link": "j@example.com", "quantity": 500}
        first = (await client.post("/api/v2", json={**body, "request_id": "r-1"})).json()
        second = (await client.post("/api/v2", json={**body, "request_id": "r-1"})).json()
        assert first == second
        conflict = (await client.post("/api/v2", json={**body, "quantity": 600, "request_id": "r-1"})).json()
        assert conflict == {"error": "This idempotency key was already used with different parameters."}
        assert await snapshot(sessionmaker, customer) == ("4.50", 2, 1)


TOO_FEW = "Quantity less than minimal 500"
TOO_MANY = "Quantity more than maximal 50000"


class TestRefusals:
    @pytest.mark.parametrize(
        ("fields", "error"),
        [
            ({"action": "add", "service": 2, "link": "a@example.com", "quantity": 500}, "Incorrect service ID"),
            ({"action": "add", "link": "a@example.com", "quantity": 500}, "Incorrect service ID"),
            ({"action": "add", "service": 1, "link": "nope", "quantity": 500}, "Incorrect link"),
            ({"action": "add", "service": 1, "quantity": 500}, "Incorrect link"),
            ({"action": "add", "service": 1, "link": "a@example.com", "quantity": 499}, TOO_FEW),
            ({"action": "add", "service": 1, "link": "a@example.com", "quantity": "x"}, "Incorrect quantity"),
            ({"action": "add", "service": 1, "link": "a@example.com", "quantity": "1000.5"}, "Incorrect quantity"),
            ({"action": "add", "service": 1, "link": "a@example.com", "quantity": 50001}, TOO_MANY),
            ({"action": "add", "service": 1, "link": "a@example.com", "quantity": 6000}, "Not enough funds on balance"),
            ({"action": "add", "service": 1, "link": "a@example.com", "quantity": 500, "request_id": ""},
             "An idempotency key is 1 to 255 printable ASCII characters."),
            ({"action": "status", "order": 1}, "Incorrect order ID"),
            ({"action": "status"}, "Incorrect request"),
            ({"action": "status", "order": 1, "orders": "1"}, "Incorrect request"),
            ({"action": "status", "orders": ",".join(str(i) for i in range(101))}, "Incorrect request"),
            ({"action": "cancel"}, "Incorrect request"),
            ({"action": "nope"}, "Incorrect request"),
            ({}, "Incorrect request"),
        ],
    )  # fmt: skip
    async def test_refused_and_nothing_changes(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        fields: dict[str, object],
        error: str,
    ) -> None:
        customer = await make_customer(balance="5")
        response = await v2(client, customer, **fields)
        assert response.content == ('{"error":"' + error + '"}').encode()
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)

    @pytest.mark.parametrize("order", [[1], {"a": 1}, [], None, True, 1.5])
    async def test_status_of_an_odd_order_value(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, order: object
    ) -> None:
        customer = await make_customer()
        response = await client.post("/api/v2", json={"key": customer.api_key, "action": "status", "order": order})
        assert response.status_code == 200
        assert response.json()["error"] in ("Incorrect order ID", "Incorrect request")

    @pytest.mark.parametrize(
        "fields",
        [
            {"action": "add", "service": [1], "link": "a@example.com", "quantity": 500},
            {"action": "add", "service": 1, "link": ["a@example.com"], "quantity": 500},
            {"action": "add", "service": 1, "link": {"a": 1}, "quantity": {"b": 2}},
            {"action": "add", "service": 1, "link": "a@example.com", "quantity": 500, "request_id": [1]},
            {"action": "cancel", "orders": [1, 2]},
            {"action": "cancel", "order": {"a": 1}},
            {"action": "status", "orders": {"a": 1}},
            {"action": "refill", "orders": [1]},
            {"action": "refill_status", "refills": {"a": 1}},
            {"action": ["status"]},
        ],
    )
    async def test_every_action_with_odd_json_types(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        fields: dict[str, object],
    ) -> None:
        customer = await make_customer(balance="5")
        response = await client.post("/api/v2", json={"key": customer.api_key, **fields})
        assert response.status_code == 200
        assert set(response.json()) == {"error"}
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)

    async def test_opted_out_recipient(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="5")
        gone = unique_email("gone")
        async with sessionmaker.begin() as session:
            assert await consent.opt_out(session, email=gone, source="recipient")
        response = await v2(client, customer, action="add", service=1, link=gone, quantity=500)
        assert response.json() == {"error": "Recipient has opted out."}
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)

    @pytest.mark.parametrize(
        "action", ["services", "add", "status", "cancel", "balance", "refill", "refill_status", "x"]
    )
    async def test_the_key_first(self, client: httpx.AsyncClient, action: str) -> None:
        response = await v2(client, None, action=action, service=9, orders="1")
        assert response.content == b'{"error":"Invalid API key"}'

    @pytest.mark.parametrize(
        "body", [b"", b"not a form", b"\xff\xfe", b'{"key": 1}', b"[1,2]", b"key=%ff&action=balance"]
    )
    async def test_unreadable_or_keyless_bodies(self, client: httpx.AsyncClient, body: bytes) -> None:
        response = await client.post(
            "/api/v2", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 200
        assert response.json()["error"] in ("Incorrect request", "Invalid API key")

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
    async def test_other_methods(self, client: httpx.AsyncClient, method: str) -> None:
        response = await client.request(method, "/api/v2?key=osk_x&action=balance")
        assert (response.status_code, response.content) == (200, b'{"error":"Incorrect request"}')
        assert response.headers["Allow"] == "POST"

    async def test_the_key_is_never_read_from_the_url(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer()
        response = await client.post(f"/api/v2?key={customer.api_key}", data={"action": "balance"})
        assert response.content == b'{"error":"Invalid API key"}'
