"""Deposit addresses: one per account and network, from the operator's pool, assigned by POST."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.deposits import addresses, repository
from ordersvc.deposits import service as deposits
from ordersvc.deposits.models import Network
from ordersvc.outbox import mailer
from ordersvc.timestamps import utc_now
from tests.conftest import MakeCustomer
from tests.deposits.conftest import tx_hash
from tests.support import Customer, run_cli

LATER = timedelta(days=36500)


def ltc_event(address: str) -> deposits.DepositEvent:
    """A chain watcher's final LTC deposit of 20 USD to this address."""
    tx = tx_hash()
    return deposits.DepositEvent(processor="chain", external_id=f"LTC:{tx}:{address}", amount_mills=20_000,
                                 payload={}, network="LTC", address=address, tx_hash=tx)  # fmt: skip


@pytest.fixture
async def ltc_pool(sessionmaker: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    """LTC's pool holds exactly the addresses a test loads; it is emptied before and after."""

    async def load(count: int) -> list[str]:
        loaded = [f"L{uuid.uuid4().hex}" for _ in range(count)]
        async with sessionmaker.begin() as session:
            assert await addresses.import_addresses(session, network=Network.LTC, addresses=loaded) == count
        return loaded

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
        assigned = await client.post("/v1/deposit-addresses/LTC", headers=headers)
        assert (assigned.status_code, assigned.json()) == (201, {"network": "LTC", "address": pool[0]})
        again = await client.post("/v1/deposit-addresses/LTC", headers=headers)
        assert (again.status_code, again.json()) == (200, assigned.json())
        assert (await client.get("/v1/deposit-addresses/LTC", headers=headers)).json() == assigned.json()
        assert (await client.get("/v1/deposit-addresses", headers=headers)).json() == {"data": [assigned.json()]}

    async def test_concurrent_customers_get_distinct_addresses(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, ltc_pool
    ) -> None:
        pool = await ltc_pool(10)
        customers = [await make_customer() for _ in range(10)]
        responses = await asyncio.gather(
            *(client.post("/v1/deposit-addresses/LTC", headers={"X-API-Key": c.api_key}) for c in customers)
        )
        assert sorted(r.json()["address"] for r in responses) == sorted(pool)

    async def test_one_customer_racing_itself_gets_one_address(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, ltc_pool
    ) -> None:
        await ltc_pool(5)
        customer = await make_customer()
        responses = await asyncio.gather(
            *(client.post("/v1/deposit-addresses/LTC", headers={"X-API-Key": customer.api_key}) for _ in range(5))
        )
        assert len({r.json()["address"] for r in responses}) == 1

    async def test_empty_pool_is_a_clear_error_and_a_loud_log(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, ltc_pool, caplog: pytest.LogCaptureFixture
    ) -> None:
        await ltc_pool(0)
        customer = await make_customer()
        with caplog.at_level(logging.ERROR, logger="ordersvc.deposits.addresses"):
            response = await client.post("/v1/deposit-addresses/LTC", headers={"X-API-Key": customer.api_key})
        assert (response.status_code, response.json()["code"]) == (409, "no_address_available")
        assert "POOL EMPTY for LTC" in caplog.text

    async def test_unknown_network_is_422(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        response = await client.post("/v1/deposit-addresses/DOGE", headers={"X-API-Key": customer.api_key})
        assert response.status_code == 422


class TestImport:
    async def test_duplicates_are_skipped_and_bad_lines_refused(
        self, sessionmaker: async_sessionmaker[AsyncSession], ltc_pool
    ) -> None:
        existing = await ltc_pool(2)
        async with sessionmaker.begin() as session:
            added = await addresses.import_addresses(
                session, network=Network.LTC, addresses=[*existing, "", "  ", "Lfresh" + uuid.uuid4().hex]
            )
        assert added == 1
        async with sessionmaker.begin() as session:
            with pytest.raises(addresses.InvalidAddress):
                await addresses.import_addresses(session, network=Network.LTC, addresses=["has space in it"])


async def free_ltc(maker: async_sessionmaker[AsyncSession]) -> int:
    async with maker() as session:
        # Every free one, resting after a recycling or not.
        return await repository.free_address_count(session, Network.LTC.value, released_before=utc_now() + LATER)


async def backdate(maker: async_sessionmaker[AsyncSession], address: str, days: int) -> None:
    async with maker.begin() as session:
        await session.execute(
            sa.text("UPDATE deposit_addresses SET assigned_at = now() - make_interval(days => :d) WHERE address = :a"),
            {"d": days, "a": address},
        )


async def post_ltc(client: httpx.AsyncClient, customer: Customer) -> httpx.Response:
    return await client.post("/v1/deposit-addresses/LTC", headers={"X-API-Key": customer.api_key})


class TestOnlyAnExplicitRequestAssigns:
    async def test_reading_assigns_nothing_and_is_404_until_asked(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, ltc_pool
    ) -> None:
        await ltc_pool(2)
        customer = await make_customer()
        for _ in range(3):
            response = await client.get("/v1/deposit-addresses/LTC", headers={"X-API-Key": customer.api_key})
            assert (response.status_code, response.json()["code"]) == (404, "no_deposit_address")
        assert await free_ltc(sessionmaker) == 2
        assert (await post_ltc(client, customer)).status_code == 201
        assert await free_ltc(sessionmaker) == 1

    async def test_an_unverified_account_is_refused_and_takes_nothing(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, ltc_pool
    ) -> None:
        await ltc_pool(1)
        customer = await make_customer()
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE accounts SET email_verified_at = NULL WHERE id = :id"), {"id": customer.account_id}
            )
        response = await post_ltc(client, customer)
        assert (response.status_code, response.json()["code"]) == (403, "email_not_verified")
        assert await free_ltc(sessionmaker) == 1


class TestRecycling:
    async def test_an_address_unused_past_the_period_goes_back_to_the_pool_after_fresh_ones(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, ltc_pool
    ) -> None:
        first, *_ = await ltc_pool(1)
        holder, other = await make_customer(), await make_customer()
        assert (await post_ltc(client, holder)).json()["address"] == first
        await backdate(sessionmaker, first, 31)
        async with sessionmaker.begin() as session:
            released = await addresses.recycle_unused_addresses(session, days=30)
        assert [(r.address, r.account_id) for r in released] == [(first, holder.account_id)]
        assert (await client.get("/v1/deposit-addresses/LTC", headers={"X-API-Key": holder.api_key})).status_code == 404
        # A never-used address is handed out before the recycled one, which rests a recycle
        # period first (a late deposit of its former holder must not reach a stranger).
        fresh, *_ = await ltc_pool(1)
        assert (await post_ltc(client, other)).json()["address"] == fresh
        assert (await post_ltc(client, holder)).json()["code"] == "no_address_available"
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE deposit_addresses SET released_at = now() - interval '31 days' WHERE address = :a"),
                {"a": first},
            )
        assert (await post_ltc(client, holder)).json()["address"] == first

    async def test_the_background_loop_in_serve_recycles_at_its_first_round(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, ltc_pool, app
    ) -> None:
        """Nobody has to remember a cron job: the loop `serve` runs (and `ordersvc mailer`)
        recycles on its first round and then hourly, with the configured period."""
        address, *_ = await ltc_pool(1)
        holder = await make_customer()
        assert (await post_ltc(client, holder)).json()["address"] == address
        await backdate(sessionmaker, address, app.state.settings.deposit_address_recycle_days + 1)
        stop = asyncio.Event()
        loop = asyncio.create_task(mailer.run(sessionmaker, app.state.settings, stop))
        try:
            for _ in range(100):
                if await free_ltc(sessionmaker) == 1:
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await loop
        assert await free_ltc(sessionmaker) == 1
        assert (await client.get("/v1/deposit-addresses/LTC", headers={"X-API-Key": holder.api_key})).status_code == 404

    async def test_recent_and_paid_addresses_are_kept(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, ltc_pool
    ) -> None:
        recent_address, paid_address = await ltc_pool(2)
        recent, paid = await make_customer(), await make_customer()
        assert (await post_ltc(client, recent)).json()["address"] == recent_address
        assert (await post_ltc(client, paid)).json()["address"] == paid_address
        async with sessionmaker.begin() as session:
            outcome = await deposits.record_deposit(session, ltc_event(paid_address))
        assert outcome.status == "credited"
        await backdate(sessionmaker, paid_address, 90)
        async with sessionmaker.begin() as session:
            released = await addresses.recycle_unused_addresses(session, days=30)
        assert {r.address for r in released} & {recent_address, paid_address} == set()

    async def test_a_deposit_to_a_recycled_address_is_kept_unmatched_naming_its_former_holder(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, ltc_pool, caplog
    ) -> None:
        (address,) = await ltc_pool(1)
        holder = await make_customer()
        await post_ltc(client, holder)
        await backdate(sessionmaker, address, 31)
        async with sessionmaker.begin() as session:
            await addresses.recycle_unused_addresses(session, days=30)
        with caplog.at_level(logging.WARNING, logger="ordersvc.deposits.service"):
            async with sessionmaker.begin() as session:
                outcome = await deposits.record_deposit(session, ltc_event(address))
        assert outcome.status == "unmatched"
        assert f"recycled from account {holder.account_id}" in caplog.text
        async with sessionmaker() as session:
            (unmatched,) = [d for d in await deposits.unmatched_deposits(session) if d.address == address]
            former = await deposits.former_holders(session, [unmatched])
        assert unmatched.id is not None
        assert former[unmatched.id].account_id == holder.account_id

    async def test_an_address_a_deposit_is_being_recorded_on_is_skipped(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, ltc_pool
    ) -> None:
        (address,) = await ltc_pool(1)
        holder = await make_customer()
        await post_ltc(client, holder)
        await backdate(sessionmaker, address, 31)
        async with sessionmaker() as deposit_in_flight:
            # The deposit path reads the holder with the row locked, until its transaction ends.
            assert await repository.owner_of_address(deposit_in_flight, "LTC", address) == holder.account_id
            async with sessionmaker.begin() as session:
                assert address not in {r.address for r in await addresses.recycle_unused_addresses(session, days=30)}
            await deposit_in_flight.commit()
        async with sessionmaker.begin() as session:
            assert address in {r.address for r in await addresses.recycle_unused_addresses(session, days=30)}

    async def test_the_period_is_at_least_a_day(self, sessionmaker) -> None:
        async with sessionmaker.begin() as session:
            with pytest.raises(addresses.InvalidRecyclePeriod):
                await addresses.recycle_unused_addresses(session, days=0)


class TestPoolStatus:
    async def test_counts_free_assigned_and_recyclable(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, ltc_pool, caplog
    ) -> None:
        old, _, _ = await ltc_pool(3)
        with caplog.at_level(logging.WARNING, logger="ordersvc.deposits.addresses"):
            await post_ltc(client, await make_customer())
        assert "pool for LTC is running low: 2 free" in caplog.text
        await backdate(sessionmaker, old, 40)
        async with sessionmaker() as session:
            (ltc,) = [s for s in await addresses.pool_status(session, days=30) if s.network == Network.LTC]
        assert (ltc.free, ltc.recyclable) == (2, 1)
        result = run_cli("deposits", "pool")
        assert result.returncode == 0, result.stderr
        assert "network\tfree\tassigned\trecyclable" in result.stdout
        (line,) = [line for line in result.stdout.splitlines() if line.startswith("LTC\t")]
        assert line.startswith("LTC\t2\t")
        assert line.endswith("\tLOW: import more addresses")
        # Released here so that no later test finds an old assignment.
        assert "1 addresses back in the pool" in run_cli("deposits", "recycle", "--days", "30").stdout
