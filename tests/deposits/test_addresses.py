"""Deposit addresses: one per account and network, from the operator's pool."""

from __future__ import annotations

import asyncio
import logging
import uuid

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.deposits import service as deposits
from ordersvc.deposits.models import Network
from tests.conftest import MakeCustomer


@pytest.fixture
async def ltc_pool(sessionmaker: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    """LTC's pool holds exactly the addresses a test loads; it is emptied before and after."""

    async def load(count: int) -> list[str]:
        addresses = [f"L{uuid.uuid4().hex}" for _ in range(count)]
        async with sessionmaker.begin() as session:
            assert await deposits.import_addresses(session, network=Network.LTC, addresses=addresses) == count
        return addresses

    async def empty() -> None:
        async with sessionmaker.begin() as session:
            await session.execute(sa.text("DELETE FROM deposit_addresses WHERE network = 'LTC' AND account_id IS NULL"))

    await empty()
    yield load
    await empty()


class TestAssignment:
    async def test_first_request_assigns_then_it_stays(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, ltc_pool
    ) -> None:
        pool = await ltc_pool(3)
        customer = await make_customer()
        headers = {"X-API-Key": customer.api_key}
        assert (await client.get("/v1/deposit-addresses", headers=headers)).json() == {"data": []}
        first = (await client.get("/v1/deposit-addresses/LTC", headers=headers)).json()
        assert first == {"network": "LTC", "address": pool[0]}
        assert (await client.get("/v1/deposit-addresses/LTC", headers=headers)).json() == first
        assert (await client.get("/v1/deposit-addresses", headers=headers)).json() == {"data": [first]}

    async def test_concurrent_customers_get_distinct_addresses(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, ltc_pool
    ) -> None:
        pool = await ltc_pool(10)
        customers = [await make_customer() for _ in range(10)]
        responses = await asyncio.gather(
            *(client.get("/v1/deposit-addresses/LTC", headers={"X-API-Key": c.api_key}) for c in customers)
        )
        assert sorted(r.json()["address"] for r in responses) == sorted(pool)

    async def test_one_customer_racing_itself_gets_one_address(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, ltc_pool
    ) -> None:
        await ltc_pool(5)
        customer = await make_customer()
        responses = await asyncio.gather(
            *(client.get("/v1/deposit-addresses/LTC", headers={"X-API-Key": customer.api_key}) for _ in range(5))
        )
        assert len({r.json()["address"] for r in responses}) == 1

    async def test_empty_pool_is_a_clear_error_and_a_loud_log(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, ltc_pool, caplog: pytest.LogCaptureFixture
    ) -> None:
        await ltc_pool(0)
        customer = await make_customer()
        with caplog.at_level(logging.ERROR, logger="ordersvc.deposits.service"):
            response = await client.get("/v1/deposit-addresses/LTC", headers={"X-API-Key": customer.api_key})
        assert (response.status_code, response.json()["code"]) == (409, "no_address_available")
        assert "POOL EMPTY for LTC" in caplog.text

    async def test_unknown_network_is_422(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        response = await client.get("/v1/deposit-addresses/DOGE", headers={"X-API-Key": customer.api_key})
        assert response.status_code == 422


class TestImport:
    async def test_duplicates_are_skipped_and_bad_lines_refused(
        self, sessionmaker: async_sessionmaker[AsyncSession], ltc_pool
    ) -> None:
        existing = await ltc_pool(2)
        async with sessionmaker.begin() as session:
            added = await deposits.import_addresses(
                session, network=Network.LTC, addresses=[*existing, "", "  ", "Lfresh" + uuid.uuid4().hex]
            )
        assert added == 1
        async with sessionmaker.begin() as session:
            with pytest.raises(deposits.InvalidAddress):
                await deposits.import_addresses(session, network=Network.LTC, addresses=["has space in it"])
