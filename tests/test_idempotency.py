"""`Idempotency-Key` on every REST POST that creates or moves something besides an order (whose
key has its own tests, tests/orders): coupon redemption, API key creation, cancellation. A retry
replays the first answer, races included; another request with the key is a conflict; a
refusal leaves the key unused; a new API key's answer is stored sealed and replayed only while
the key is active; keys last a day. Deposit address assignment takes none (idempotent itself)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc import idempotency
from ordersvc.coupons import service as coupons
from ordersvc.deposits import addresses
from ordersvc.deposits.models import Network
from tests.conftest import MakeCustomer
from tests.legacy.helpers import snapshot
from tests.support import Customer


def headers(customer: Customer, key: str | None = None) -> dict[str, str]:
    return {"X-API-Key": customer.api_key} | ({"Idempotency-Key": key} if key else {})


async def new_coupon(sessionmaker: async_sessionmaker[AsyncSession], amount_mills: int = 5_000) -> str:
    code = f"idem-{uuid.uuid4().hex[:8]}"
    async with sessionmaker.begin() as session:
        await coupons.create_coupon(session, code=code, amount_mills=amount_mills)
    return code


async def replays(sessionmaker: async_sessionmaker[AsyncSession], customer: Customer) -> list[tuple[str, str, str]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            sa.text("SELECT operation, key, body FROM request_replays WHERE account_id = :a ORDER BY created_at"),
            {"a": customer.account_id},
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


class TestCoupons:
    async def test_a_retry_replays_the_first_answer_and_credits_once(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, code = await make_customer(), await new_coupon(sessionmaker)
        first = await client.post("/v1/coupons/redeem", json={"code": code}, headers=headers(customer, "c-1"))
        again = await client.post("/v1/coupons/redeem", json={"code": code}, headers=headers(customer, "c-1"))
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json() == {"code": code, "amount": "5.00"}
        assert ("idempotent-replayed" not in first.headers, again.headers["idempotent-replayed"]) == (True, "true")
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)
        # Without the key, a second redemption is what it is: refused.
        unkeyed = await client.post("/v1/coupons/redeem", json={"code": code}, headers=headers(customer))
        assert (unkeyed.status_code, unkeyed.json()["code"]) == (409, "coupon_already_redeemed")

    async def test_the_key_with_another_request_is_a_conflict(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer()
        one, other = await new_coupon(sessionmaker), await new_coupon(sessionmaker)
        assert (
            await client.post("/v1/coupons/redeem", json={"code": one}, headers=headers(customer, "c-2"))
        ).status_code == 201
        conflict = await client.post("/v1/coupons/redeem", json={"code": other}, headers=headers(customer, "c-2"))
        assert (conflict.status_code, conflict.json()["code"]) == (409, "idempotency_conflict")
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)

    async def test_a_refused_request_leaves_its_key_unused(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, code = await make_customer(), await new_coupon(sessionmaker)
        refused = await client.post("/v1/coupons/redeem", json={"code": "no-such-code"}, headers=headers(customer, "k"))
        assert (refused.status_code, refused.json()["code"]) == (404, "coupon_not_found")
        assert await replays(sessionmaker, customer) == []
        # The same key now carries another request: it was never used.
        done = await client.post("/v1/coupons/redeem", json={"code": code}, headers=headers(customer, "k"))
        assert done.status_code == 201

    async def test_racing_retries_credit_once_and_all_get_the_answer(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, code = await make_customer(), await new_coupon(sessionmaker)
        answers = await asyncio.gather(
            *[
                client.post("/v1/coupons/redeem", json={"code": code}, headers=headers(customer, "race"))
                for _ in range(8)
            ]
        )
        assert [a.status_code for a in answers] == [201] * 8
        assert {a.json()["amount"] for a in answers} == {"5.00"}
        assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 7
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)

    @pytest.mark.parametrize("key", ["", "x" * 256, "bad\x7f"])
    async def test_a_malformed_key_is_refused(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        key: str,
    ) -> None:
        customer, code = await make_customer(), await new_coupon(sessionmaker)
        refused = await client.post(
            "/v1/coupons/redeem", json={"code": code}, headers={"X-API-Key": customer.api_key, "Idempotency-Key": key}
        )
        assert refused.status_code in (400, 422), refused.text
        assert refused.json()["code"] in {"invalid_idempotency_key", "validation_error", "invalid_text"}
        assert await snapshot(sessionmaker, customer) == ("0.00", 0, 0)


class TestApiKeys:
    async def test_a_retry_gets_the_same_key_and_its_secret_is_stored_sealed(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer()
        first = await client.post("/v1/api-keys", json={"name": "ci"}, headers=headers(customer, "k-1"))
        again = await client.post("/v1/api-keys", json={"name": "ci"}, headers=headers(customer, "k-1"))
        assert (first.status_code, again.status_code, again.headers["idempotent-replayed"]) == (201, 201, "true")
        assert again.json() == first.json()
        listed = (await client.get("/v1/api-keys", headers=headers(customer))).json()["data"]
        assert [k["name"] for k in listed] == ["", "ci"]  # the account's first key, and one new one
        ((operation, key, body),) = await replays(sessionmaker, customer)
        assert (operation, key) == ("api_keys_create", "k-1")
        assert first.json()["api_key"] not in body
        assert body.startswith("v1.")  # sealed
        # The replayed key works.
        assert (await client.get("/v1/balance", headers={"X-API-Key": again.json()["api_key"]})).status_code == 200


class TestCancel:
    async def test_a_retry_gets_the_first_answer_and_one_refund(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="5")
        placed = (
            await client.post(
                "/v1/orders", json={"email": "c@example.com", "quantity": 1000}, headers=headers(customer)
            )
        ).json()
        url = f"/v1/orders/{placed['id']}/cancel"
        first = await client.post(url, headers=headers(customer, "x-1"))
        again = await client.post(url, headers=headers(customer, "x-1"))
        assert (first.status_code, again.status_code, again.headers["idempotent-replayed"]) == (200, 200, "true")
        assert again.json() == first.json()
        assert (first.json()["order"]["status"], first.json()["refund"]) == ("canceled", "1.00")
        assert await snapshot(sessionmaker, customer) == ("5.00", 3, 1)  # credit, order, one refund
        other = (
            await client.post("/v1/orders", json={"email": "c@example.com", "quantity": 500}, headers=headers(customer))
        ).json()
        conflict = await client.post(f"/v1/orders/{other['id']}/cancel", headers=headers(customer, "x-1"))
        assert (conflict.status_code, conflict.json()["code"]) == (409, "idempotency_conflict")


class TestDepositAddresses:
    async def test_assignment_takes_no_key_and_always_answers_the_current_address(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """Idempotent by itself (one address per network); a stored answer could name an address
        recycled and handed to someone else since, so none is kept."""
        address = f"L{uuid.uuid4().hex}"
        async with sessionmaker.begin() as session:
            await session.execute(sa.text("DELETE FROM deposit_addresses WHERE network = 'LTC' AND account_id IS NULL"))
            await addresses.import_addresses(session, network=Network.LTC, addresses=[address])
        customer = await make_customer()
        first = await client.post("/v1/deposit-addresses/LTC", headers=headers(customer, "a-1"))
        again = await client.post("/v1/deposit-addresses/LTC", headers=headers(customer, "a-1"))
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json() == again.json() == {"network": "LTC", "address": address}
        assert "idempotent-replayed" not in again.headers
        assert await replays(sessionmaker, customer) == []


class TestLifetime:
    async def test_a_revoked_key_is_not_replayed(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        created = await client.post("/v1/api-keys", json={"name": "old"}, headers=headers(customer, "k-r"))
        prefix = created.json()["prefix"]
        assert (await client.delete(f"/v1/api-keys/{prefix}", headers=headers(customer))).status_code == 204
        again = await client.post("/v1/api-keys", json={"name": "old"}, headers=headers(customer, "k-r"))
        assert (again.status_code, again.json()["code"]) == (409, "idempotency_conflict")

    async def test_keys_are_kept_a_day_then_pruned_with_their_answers(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer()
        assert (await client.post("/v1/api-keys", json={}, headers=headers(customer, "k-p"))).status_code == 201
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE request_replays SET created_at = now() - interval '25 hours' WHERE account_id = :a"),
                {"a": customer.account_id},
            )
        async with sessionmaker.begin() as session:
            assert await idempotency.prune_replays(session) >= 1
        assert await replays(sessionmaker, customer) == []
        # The key starts afresh: a new request, a new key made.
        fresh = await client.post("/v1/api-keys", json={"name": "other"}, headers=headers(customer, "k-p"))
        assert (fresh.status_code, "idempotent-replayed" in fresh.headers) == (201, False)
