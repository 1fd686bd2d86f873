"""`POST /v1/orders/batch`: every line decided alone, in order, as if sent one by one; a batch
Idempotency-Key replays the whole answer and never places a line twice."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.consent import service as consent
from ordersvc.ledger import service as ledger
from ordersvc.orders import service as orders
from ordersvc.orders.service import OrderLine
from tests.conftest import MakeCustomer
from tests.legacy.helpers import snapshot
from tests.support import Customer, confirm_recipient, unique_email


def auth(customer: Customer) -> dict[str, str]:
    return {"Authorization": f"Bearer {customer.api_key}"}


async def batch(
    client: httpx.AsyncClient, customer: Customer, lines: list[dict[str, object]], **headers: str
) -> httpx.Response:
    return await client.post("/v1/orders/batch", json={"orders": lines}, headers={**auth(customer), **headers})


def outcomes(response: httpx.Response) -> list[str]:
    """Each line as `placed`, `replayed` or its problem's code."""
    assert response.status_code == 200, response.text
    found = []
    for result in response.json()["results"]:
        if result["problem"] is not None:
            assert result["order"] is None
            found.append(result["problem"]["code"])
        else:
            found.append("replayed" if result["replayed"] else "placed")
    return found


class TestLines:
    async def test_each_line_decided_alone_in_order(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="3")
        lines = [
            {"email": "one@example.com", "quantity": 2000},
            {"email": "not an address", "quantity": 1000},
            {"email": "two@example.com", "quantity": 100},
            {"email": "three@example.com", "quantity": 1500},  # 1.00 left: refused
            {"email": "four@example.com", "quantity": 1000},  # exactly what is left: placed
            {"email": "five@example.com", "quantity": 500},  # nothing left
        ]
        response = await batch(client, customer, lines)
        assert outcomes(response) == [
            "placed",
            "invalid_email",
            "invalid_quantity",
            "insufficient_balance",
            "placed",
            "insufficient_balance",
        ]
        body = response.json()
        assert (body["placed"], body["refused"], body["charged"]) == (2, 4, "3.00")
        assert [r["line"] for r in body["results"]] == [1, 2, 3, 4, 5, 6]
        first = body["results"][0]["order"]
        assert re.fullmatch(r"[0-9A-F]{8}", first["id"])
        assert first | {"id": "X", "created": "X"} == {
            "id": "X",
            "email": "one@example.com",
            "quantity": 2000,
            "price": "2.00",
            "status": "awaiting_confirmation",
            "progress": 0,
            "created": "X",
            "cancelable": True,
        }
        problem = body["results"][3]["problem"]
        assert problem == {"code": "insufficient_balance", "message": "Insufficient balance."}
        assert await snapshot(sessionmaker, customer) == ("0.00", 3, 2)
        # The order listing shows them as single orders would be, the later line newer.
        listed = (await client.get("/v1/orders", headers=auth(customer))).json()["data"]
        assert [o["email"] for o in listed] == ["four@example.com", "one@example.com"]

    async def test_confirmed_and_opted_out_recipients(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="10")
        confirmed, opted_out = unique_email("confirmed"), unique_email("gone")
        await confirm_recipient(sessionmaker, customer, confirmed)
        async with sessionmaker.begin() as session:
            assert await consent.opt_out(session, email=opted_out, source="recipient")
        response = await batch(
            client, customer, [{"email": confirmed, "quantity": 500}, {"email": opted_out, "quantity": 500}]
        )
        assert outcomes(response) == ["placed", "recipient_opted_out"]
        assert response.json()["results"][0]["order"]["status"] == "pending"

    async def test_a_line_key_is_the_single_order_key(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="10")
        single = await client.post(
            "/v1/orders",
            json={"email": "k@example.com", "quantity": 500},
            headers={**auth(customer), "Idempotency-Key": "line-key-1"},
        )
        assert single.status_code == 201
        response = await batch(
            client,
            customer,
            [
                {"email": "k@example.com", "quantity": 500, "idempotency_key": "line-key-1"},
                {"email": "k@example.com", "quantity": 700, "idempotency_key": "line-key-1"},
                {"email": "new@example.com", "quantity": 500, "idempotency_key": "line-key-2"},
                {"email": "new@example.com", "quantity": 500, "idempotency_key": "line-key-2"},
                {"email": "x@example.com", "quantity": 500, "idempotency_key": "bad\nkey"},
            ],
        )
        assert outcomes(response) == [
            "replayed",
            "idempotency_conflict",
            "placed",
            "replayed",
            "invalid_idempotency_key",
        ]
        results = response.json()["results"]
        assert results[0]["order"]["id"] == single.json()["id"]
        assert results[2]["order"]["id"] == results[3]["order"]["id"]
        assert response.json()["charged"] == "0.50"
        assert await snapshot(sessionmaker, customer) == ("9.00", 3, 2)

    async def test_more_than_64_lines_keep_their_order(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="40")
        lines = [{"email": f"r{i}@example.com", "quantity": 500} for i in range(100)]
        response = await batch(client, customer, lines)
        assert outcomes(response) == ["placed"] * 80 + ["insufficient_balance"] * 20
        async with sessionmaker() as session:
            emails = (
                await session.execute(
                    sa.text("SELECT email FROM orders WHERE account_id = :a ORDER BY id"), {"a": customer.account_id}
                )
            ).scalars()
            assert list(emails) == [f"r{i}@example.com" for i in range(80)]
        assert await snapshot(sessionmaker, customer) == ("0.00", 81, 80)


class TestWholeRequest:
    @pytest.mark.parametrize("count", [0, 101])
    async def test_line_count(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        count: int,
    ) -> None:
        customer = await make_customer(balance="100")
        response = await batch(client, customer, [{"email": "a@example.com", "quantity": 500}] * count)
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_batch"
        assert await snapshot(sessionmaker, customer) == ("100.00", 1, 0)

    async def test_bad_key_first(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/orders/batch", json={"orders": []}, headers={"Authorization": "Bearer osk_nope"}
        )
        assert response.status_code == 401

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"orders": "a@example.com 500"},
            {"orders": [{"email": "a@example.com"}]},
            {"orders": [{"email": "a@example.com", "quantity": "500"}]},
            {"orders": [{"email": "a@example.com", "quantity": 500, "extra": 1}]},
        ],
    )
    async def test_malformed_body_is_422_and_changes_nothing(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        body: dict[str, object],
    ) -> None:
        customer = await make_customer(balance="5")
        response = await client.post("/v1/orders/batch", json=body, headers=auth(customer))
        assert response.status_code == 422
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)


class TestBatchKey:
    async def test_replays_the_whole_answer_refusals_included(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="1")
        lines = [{"email": "a@example.com", "quantity": 1000}, {"email": "b@example.com", "quantity": 500}]
        first = await batch(client, customer, lines, **{"Idempotency-Key": "batch-1"})
        assert outcomes(first) == ["placed", "insufficient_balance"]
        assert "Idempotent-Replayed" not in first.headers
        async with sessionmaker.begin() as session:  # money arrives: the replay still tells the first answer
            await ledger.credit(session, email=customer.email, amount_mills=5000)
        again = await batch(client, customer, lines, **{"Idempotency-Key": "batch-1"})
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        other = await batch(client, customer, lines[:1], **{"Idempotency-Key": "batch-1"})
        assert other.status_code == 409
        assert other.json()["code"] == "idempotency_conflict"
        assert await snapshot(sessionmaker, customer) == ("5.00", 3, 1)

    async def test_concurrent_retries_place_each_line_once(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="100")
        lines = [{"email": f"c{i}@example.com", "quantity": 500} for i in range(30)]
        answers = await asyncio.gather(
            *(batch(client, customer, lines, **{"Idempotency-Key": "race-1"}) for _ in range(8))
        )
        assert all(a.status_code == 200 for a in answers)
        bodies = [a.json() for a in answers]
        assert all(b == bodies[0] for b in bodies)  # the same 30 orders, all this batch's: 15.00 charged
        assert bodies[0]["charged"] == "15.00"
        assert await snapshot(sessionmaker, customer) == ("85.00", 31, 30)

    async def test_a_failure_midway_tells_which_lines_and_a_retry_places_the_rest_once(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Line 1 is placed, then the database goes away: the answer is 200 with line 1's order
        and the other lines `line_not_decided` (a 503 would hide the order placed), and is not
        recorded. The retry with the same key places lines 2 and 3, and line 1 once."""
        customer = await make_customer(balance="10")
        lines = [{"email": f"m{i}@example.com", "quantity": 500} for i in range(3)]
        real_send = orders._send
        calls = 0

        async def dying_send(*args: object, **kwargs: object) -> object:
            nonlocal calls
            calls += 1
            if calls > 1:
                raise ConnectionResetError("the database went away")
            return await real_send(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(orders, "_send", dying_send)
        first = await batch(client, customer, lines, **{"Idempotency-Key": "midway"})
        assert outcomes(first) == ["placed", "line_not_decided", "line_not_decided"]
        monkeypatch.setattr(orders, "_send", real_send)
        assert await snapshot(sessionmaker, customer) == ("9.50", 2, 1)
        retried = await batch(client, customer, lines, **{"Idempotency-Key": "midway"})
        assert outcomes(retried) == ["placed", "placed", "placed"]  # line 1 is this batch's, placed once
        assert retried.json()["results"][0]["order"] == first.json()["results"][0]["order"]
        assert retried.json()["charged"] == "1.50"
        assert await snapshot(sessionmaker, customer) == ("8.50", 4, 3)
        replay = await batch(client, customer, lines, **{"Idempotency-Key": "midway"})
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json() == retried.json()

    async def test_a_failure_before_any_order_fails_the_request(
        self,
        app: FastAPI,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        customer = await make_customer(balance="10")

        async def down(*args: object, **kwargs: object) -> object:
            raise ConnectionResetError("the database went away")

        monkeypatch.setattr(orders, "_send", down)
        lines = [OrderLine("x@example.com", 500), OrderLine("bad", 500)]
        with pytest.raises(ConnectionResetError):
            await orders.place_batch(app.state.engine, app.state.settings, caller=_account(customer), lines=lines)
        assert await snapshot(sessionmaker, customer) == ("10.00", 1, 0)

    async def test_a_key_reused_after_its_record_is_pruned_is_a_new_batch(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="10")
        lines = [{"email": "daily@example.com", "quantity": 500}]
        first = await batch(client, customer, lines, **{"Idempotency-Key": "daily-run"})
        async with sessionmaker.begin() as session:  # a day later, as prune_replays does
            await session.execute(
                sa.text("DELETE FROM request_replays WHERE account_id = :a AND key = 'daily-run'"),
                {"a": customer.account_id},
            )
        second = await batch(client, customer, lines, **{"Idempotency-Key": "daily-run"})
        assert outcomes(second) == ["placed"]
        assert second.json()["results"][0]["order"]["id"] != first.json()["results"][0]["order"]["id"]
        assert await snapshot(sessionmaker, customer) == ("9.00", 3, 2)


def _account(customer: Customer) -> orders.AccountCaller:
    return orders.AccountCaller(customer.account_id)
