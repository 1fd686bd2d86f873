"""The fulfilment queue: claims, leases, progress, completion, failure, and cancellation races."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import security
from tests.conftest import MakeCustomer
from tests.consent.test_consent import order, recipient
from tests.fulfilment.conftest import ConfirmedOrder
from tests.legacy.helpers import snapshot
from tests.orders.test_endpoints import auth


def as_worker(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def claim(client: httpx.AsyncClient, token: str, limit: int = 10, lease: int = 300) -> list[dict]:
    response = await client.post(
        "/v1/fulfilment/claim", json={"limit": limit, "lease_seconds": lease}, headers=as_worker(token)
    )
    assert response.status_code == 200, response.text
    data: list[dict] = response.json()["data"]
    return data


async def post(client: httpx.AsyncClient, token: str, order_id: str, action: str, **body: object) -> httpx.Response:
    return await client.post(f"/v1/fulfilment/orders/{order_id}/{action}", json=body or None, headers=as_worker(token))


@pytest.mark.usefixtures("empty_queue")
class TestClaims:
    async def test_only_confirmed_orders_are_handed_out_with_an_opt_out_url(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, confirmed_order: ConfirmedOrder, worker_token
    ) -> None:
        customer = await make_customer(balance="10")
        waiting = (await order(client, customer, recipient())).json()["id"]
        ready = await confirmed_order(customer)
        token = await worker_token()
        claimed = await claim(client, token)
        assert [c["id"] for c in claimed] == [ready]
        assert "/consent/optout/" in claimed[0]["opt_out_url"]
        assert (await client.get(claimed[0]["opt_out_url"].split("8000", 1)[1])).status_code == 200
        assert waiting not in [c["id"] for c in await claim(client, token)]

    async def test_a_disabled_accounts_orders_wait_until_it_is_enabled(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        confirmed_order: ConfirmedOrder,
        worker_token,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        customer, other = await make_customer(balance="10"), await make_customer(balance="10")
        held = await confirmed_order(customer)
        free = await confirmed_order(other)
        async with sessionmaker.begin() as session:
            await security.set_disabled(session, email=customer.email, disabled=True)
        token = await worker_token()
        assert [c["id"] for c in await claim(client, token)] == [free]
        async with sessionmaker.begin() as session:
            await security.set_disabled(session, email=customer.email, disabled=False)
        assert [c["id"] for c in await claim(client, token)] == [held]

    async def test_two_workers_racing_never_share_an_order(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, confirmed_order: ConfirmedOrder, worker_token
    ) -> None:
        customer = await make_customer(balance="30")
        to = recipient()
        ids = {await confirmed_order(customer, 500, to) for _ in range(20)}
        tokens = [await worker_token(), await worker_token()]
        results = await asyncio.gather(*(claim(client, tokens[n % 2], limit=3) for n in range(10)))
        claimed = [c["id"] for batch in results for c in batch]
        assert len(claimed) == len(set(claimed)) == 20
        assert set(claimed) == ids

    async def test_expired_lease_returns_the_order_with_its_delivered_count(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, confirmed_order: ConfirmedOrder,
        worker_token, sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:  # fmt: skip
        customer = await make_customer(balance="5")
        order_id = await confirmed_order(customer, 2000)
        first, second = await worker_token(), await worker_token()
        assert [c["id"] for c in await claim(client, first)] == [order_id]
        assert (await post(client, first, order_id, "progress", delivered=700)).json()["progress"] == 35
        assert await claim(client, second) == []  # the lease holds
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE orders SET lease_until = now() - interval '1 second' WHERE public_id = :i"),
                {"i": order_id},
            )
        resumed = await claim(client, second)
        assert [(c["id"], c["delivered"]) for c in resumed] == [(order_id, 700)]
        lost = await post(client, first, order_id, "progress", delivered=800)
        assert (lost.status_code, lost.json()["code"]) == (409, "lease_not_held")
        done = await post(client, second, order_id, "complete")
        assert (done.json()["status"], done.json()["stop"]) == ("completed", True)
        events = (await client.get(f"/v1/orders/{order_id}/events", headers=auth(customer))).json()["data"]
        assert [e["to_status"] for e in events] == [
            "awaiting_confirmation", "pending", "in_progress", "in_progress", "completed",
        ]  # fmt: skip
        assert await snapshot(sessionmaker, customer) == ("3.00", 2, 1)


@pytest.mark.usefixtures("empty_queue")
class TestProgressAndEnds:
    async def test_progress_is_monotonic_and_bounded(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, confirmed_order: ConfirmedOrder, worker_token
    ) -> None:
        customer = await make_customer(balance="5")
        order_id = await confirmed_order(customer, 1000)
        token = await worker_token()
        await claim(client, token)
        assert (await post(client, token, order_id, "progress", delivered=400)).status_code == 200
        for bad in (399, 1001):
            response = await post(client, token, order_id, "progress", delivered=bad)
            assert (response.status_code, response.json()["code"]) == (409, "invalid_progress")
        assert (await post(client, token, order_id, "progress", delivered=400)).status_code == 200

    @pytest.mark.parametrize(("delivered", "status", "balance"), [(0, "canceled", "5.00"), (333, "partial", "4.667")])
    async def test_fail_refunds_the_undelivered_share(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, confirmed_order: ConfirmedOrder, worker_token,
        sessionmaker, delivered: int, status: str, balance: str,
    ) -> None:  # fmt: skip
        customer = await make_customer(balance="5")
        order_id = await confirmed_order(customer, 1000)
        token = await worker_token()
        await claim(client, token)
        if delivered:
            await post(client, token, order_id, "progress", delivered=delivered)
        failed = await post(client, token, order_id, "fail", reason="mailbox full")
        assert failed.json()["status"] == status
        assert (await snapshot(sessionmaker, customer))[0] == balance

    async def test_customer_cancel_in_progress_stops_the_worker_with_a_partial_refund(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, confirmed_order: ConfirmedOrder, worker_token,
        sessionmaker,
    ) -> None:  # fmt: skip
        customer = await make_customer(balance="5")
        order_id = await confirmed_order(customer, 1000)
        token = await worker_token()
        await claim(client, token)
        await post(client, token, order_id, "progress", delivered=250)
        canceled = await client.post(f"/v1/orders/{order_id}/cancel", headers=auth(customer))
        assert (canceled.json()["order"]["status"], canceled.json()["refund"]) == ("in_progress", "0.00")
        told = await post(client, token, order_id, "progress", delivered=300)
        assert (told.json()["status"], told.json()["stop"]) == ("partial", True)
        assert (await snapshot(sessionmaker, customer))[0] == "4.70"  # 700 undelivered of 1000

    async def test_cancel_racing_complete_has_one_outcome_and_at_most_one_refund(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, confirmed_order: ConfirmedOrder, worker_token,
        sessionmaker,
    ) -> None:  # fmt: skip
        token = await worker_token()
        for _ in range(10):
            customer = await make_customer(balance="5")
            order_id = await confirmed_order(customer, 1000)
            await claim(client, token)
            await post(client, token, order_id, "progress", delivered=500)
            cancel, complete = await asyncio.gather(
                client.post(f"/v1/orders/{order_id}/cancel", headers=auth(customer)),
                post(client, token, order_id, "complete"),
            )
            assert complete.status_code == 200
            balance, payments, _ = await snapshot(sessionmaker, customer)
            if complete.json()["status"] == "completed":  # the worker came first: no refund, cancel refused
                assert cancel.status_code == 409
                assert (balance, payments) == ("4.00", 2)
            else:  # the cancel came first: the order ends at 500 delivered, refunding the other half once
                assert (complete.json()["status"], cancel.status_code) == ("partial", 200)
                assert (balance, payments) == ("4.50", 3)

    async def test_a_canceled_order_whose_lease_expired_is_finished_not_resumed(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, confirmed_order: ConfirmedOrder, worker_token,
        sessionmaker,
    ) -> None:  # fmt: skip
        customer = await make_customer(balance="5")
        order_id = await confirmed_order(customer, 1000)
        first, second = await worker_token(), await worker_token()
        await claim(client, first)
        await post(client, first, order_id, "progress", delivered=100)
        await client.post(f"/v1/orders/{order_id}/cancel", headers=auth(customer))
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE orders SET lease_until = now() - interval '1 second' WHERE public_id = :i"),
                {"i": order_id},
            )
        assert await claim(client, second) == []
        order = (await client.get(f"/v1/orders/{order_id}", headers=auth(customer))).json()
        assert order["status"] == "partial"
        assert (await snapshot(sessionmaker, customer))[0] == "4.90"

    async def test_nul_in_a_fail_reason_is_stored_cleaned(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, confirmed_order: ConfirmedOrder, worker_token
    ) -> None:
        customer = await make_customer(balance="5")
        order_id = await confirmed_order(customer, 1000)
        token = await worker_token()
        await claim(client, token)
        assert (await post(client, token, order_id, "fail", reason="bad\u0000x")).status_code == 200

    async def test_worker_routes_refuse_customer_keys(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer()
        response = await client.post("/v1/fulfilment/claim", json={}, headers=auth(customer))
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        bad_body = await client.post("/v1/fulfilment/claim", content=b"{", headers={"Content-Type": "application/json"})
        assert bad_body.status_code == 401


async def test_opt_out_cancels_in_progress_orders_at_the_next_call(
    client: httpx.AsyncClient, make_customer: MakeCustomer, confirmed_order: ConfirmedOrder, worker_token,
    sessionmaker, empty_queue,
) -> None:  # fmt: skip
    customer = await make_customer(balance="5")
    to = recipient()
    order_id = await confirmed_order(customer, 1000, to)
    token = await worker_token()
    (claimed,) = await claim(client, token)
    await post(client, token, order_id, "progress", delivered=100)
    assert (await client.post(claimed["opt_out_url"].split("8000", 1)[1])).status_code == 200
    told = await post(client, token, order_id, "heartbeat", lease_seconds=60)
    assert (told.json()["status"], told.json()["stop"]) == ("partial", True)
    assert (await snapshot(sessionmaker, customer))[0] == "4.90"
    events = (await client.get(f"/v1/orders/{order_id}/events", headers=auth(customer))).json()["data"]
    assert Counter(e["to_status"] for e in events)["partial"] == 1
