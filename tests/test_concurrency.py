"""Real races against PostgreSQL: no overdraft, no lost update, no double credit.

300 orders of 1.00 USD race for a balance of 100.00 USD: exactly 100 must win, in one
process (many pooled connections), through one server process over TCP, and through two
server processes at once."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import service as accounts
from ordersvc.accounts.service import AccountExists
from ordersvc.ledger import service as ledger
from ordersvc.ledger.models import PaymentKind
from ordersvc.money import format_usd
from ordersvc.pagination import PageRequest
from tests.conftest import MakeCustomer
from tests.legacy.helpers import snapshot
from tests.support import Customer, ServerProcess, confirm_recipient, serve, unique_email

ORDERS = 300
AFFORDABLE = 100
ORDER_BODY = {"action": "order", "email": "race@example.com", "quantity": 1000}  # 1.00 USD


def tally(responses: list[httpx.Response]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for response in responses:
        assert response.status_code == 200
        if re.fullmatch(rb'\{"order":"[0-9A-F]{8}"\}', response.content):
            outcomes["order"] += 1
        else:
            outcomes[response.text] += 1
    return outcomes


async def assert_exactly_affordable_orders_won(
    responses: list[httpx.Response], customer: Customer, maker: async_sessionmaker[AsyncSession]
) -> None:
    assert tally(responses) == {"order": AFFORDABLE, '{"error":"Insufficient balance."}': ORDERS - AFFORDABLE}
    # Balance 0, one credit + 100 debits, 100 orders; and the running balance equals the sum.
    assert await snapshot(maker, customer) == ("0.00", AFFORDABLE + 1, AFFORDABLE)
    async with maker() as session:
        assert await ledger.verify(session) == []


async def race(clients: list[httpx.AsyncClient], customer: Customer) -> list[httpx.Response]:
    """Fire every order at once, spread round-robin over the clients (servers)."""
    start = asyncio.Event()

    async def one(client: httpx.AsyncClient) -> httpx.Response:
        await start.wait()
        return await client.post(f"/api?key={customer.api_key}", json=ORDER_BODY)

    tasks = [asyncio.create_task(one(c)) for c, _ in zip(itertools.cycle(clients), range(ORDERS), strict=False)]
    await asyncio.sleep(0.05)
    start.set()
    return list(await asyncio.gather(*tasks))


def http_client(base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=ORDERS, max_keepalive_connections=ORDERS)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120)


@pytest.fixture(scope="module")
def two_servers(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    log_dir: Path = tmp_path_factory.mktemp("race")
    with serve(log_dir) as first, serve(log_dir) as second:
        yield [first, second]


@pytest.fixture(params=["unconfirmed", "confirmed"])
def race_customer(request: pytest.FixtureRequest, make_customer: MakeCustomer, sessionmaker) -> RaceCustomer:
    """A customer with 100.00 USD. Its recipient has not confirmed (each order runs in a
    transaction: key, consent rules, order) or has (each order is one autocommit statement)."""

    async def make() -> Customer:
        customer = await make_customer(balance="100")
        if request.param == "confirmed":
            await confirm_recipient(sessionmaker, customer, str(ORDER_BODY["email"]))
        return customer

    return make


RaceCustomer = Callable[[], Awaitable[Customer]]


class TestOrderRace:
    async def test_in_process_race_accepts_exactly_what_the_balance_covers(
        self, client: httpx.AsyncClient, race_customer: RaceCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await race_customer()
        responses = await race([client], customer)
        await assert_exactly_affordable_orders_won(responses, customer, sessionmaker)

    async def test_one_server_process_over_tcp(
        self, two_servers: list[ServerProcess], race_customer: RaceCustomer, sessionmaker
    ) -> None:
        customer = await race_customer()
        async with http_client(two_servers[0].base_url) as c:
            responses = await race([c], customer)
        await assert_exactly_affordable_orders_won(responses, customer, sessionmaker)

    async def test_two_server_processes_over_tcp(
        self, two_servers: list[ServerProcess], race_customer: RaceCustomer, sessionmaker
    ) -> None:
        customer = await race_customer()
        async with http_client(two_servers[0].base_url) as a, http_client(two_servers[1].base_url) as b:
            responses = await race([a, b], customer)
        await assert_exactly_affordable_orders_won(responses, customer, sessionmaker)
        assert two_servers[0].process.pid != two_servers[1].process.pid


class TestCreditRace:
    async def test_concurrent_credits_lose_no_update(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer()

        async def credit(mills: int) -> None:
            async with sessionmaker.begin() as session:
                await ledger.post_payment(
                    session, account_id=customer.account_id, kind=PaymentKind.CREDIT, amount_mills=mills
                )

        await asyncio.gather(*(credit(m) for m in range(1, 101)))
        async with sessionmaker() as session:
            assert await ledger.get_balance(session, account_id=customer.account_id) == sum(range(1, 101))
            assert (
                await ledger.list_payments(session, account_id=customer.account_id, page=PageRequest())
            ).total == 100

    async def test_credits_and_orders_interleaved_never_overdraw(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="10")

        async def credit() -> None:
            async with sessionmaker.begin() as session:
                await ledger.post_payment(
                    session, account_id=customer.account_id, kind=PaymentKind.CREDIT, amount_mills=1000
                )

        async def order() -> httpx.Response:
            return await client.post(f"/api?key={customer.api_key}", json=ORDER_BODY)

        results = await asyncio.gather(*(credit() for _ in range(40)), *(order() for _ in range(80)))
        won = tally([r for r in results if isinstance(r, httpx.Response)])["order"]
        assert 10 <= won <= 50
        balance, payments, orders = await snapshot(sessionmaker, customer)
        assert (balance, payments, orders) == (f"{50 - won}.00", 1 + 40 + won, won)


class TestAccountRace:
    async def test_one_account_per_email_under_concurrent_creation(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("dup")

        async def create() -> str:
            try:
                async with sessionmaker.begin() as session:
                    await accounts.create_account(session, email=email)
                return "created"
            except AccountExists:
                return "exists"

        outcomes = Counter(await asyncio.gather(*(create() for _ in range(20))))
        assert outcomes == {"created": 1, "exists": 19}


class TestIdempotencyRace:
    async def test_twenty_identical_requests_over_two_server_processes_debit_once(
        self, two_servers: list[ServerProcess], make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer(balance="10")
        headers = {"Authorization": f"Bearer {customer.api_key}", "Idempotency-Key": "one-order-please"}
        body = {"email": "race@example.com", "quantity": 1000}
        async with http_client(two_servers[0].base_url) as a, http_client(two_servers[1].base_url) as b:
            responses = await asyncio.gather(
                *(c.post("/v1/orders", json=body, headers=headers) for c, _ in zip(itertools.cycle([a, b]), range(20)))
            )
        assert [r.status_code for r in responses] == [201] * 20
        assert len({r.content for r in responses}) == 1
        assert sum(1 for r in responses if r.headers.get("idempotent-replayed") != "true") == 1
        assert await snapshot(sessionmaker, customer) == ("9.00", 2, 1)


class TestIdempotencyKeysUnderLoad:
    async def test_distinct_keys_race_without_deadlock(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        """Each request inserts its own key row (which share-locks the account) before locking
        the account for the debit: the locks must not deadlock."""
        customer = await make_customer(balance="30")
        headers = {"Authorization": f"Bearer {customer.api_key}"}

        async def order(n: int) -> httpx.Response:
            return await client.post(
                "/v1/orders",
                json={"email": "race@example.com", "quantity": 1000},
                headers={**headers, "Idempotency-Key": f"distinct-{n}"},
            )

        responses = await asyncio.gather(*(order(n) for n in range(40)))
        assert Counter(r.status_code for r in responses) == {201: 30, 402: 10}
        assert await snapshot(sessionmaker, customer) == ("0.00", 31, 30)

    async def test_one_key_with_different_bodies_places_one_order(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer(balance="30")
        headers = {"Authorization": f"Bearer {customer.api_key}", "Idempotency-Key": "contested"}
        responses = await asyncio.gather(
            *(
                client.post("/v1/orders", json={"email": "race@example.com", "quantity": 500 + n % 2}, headers=headers)
                for n in range(20)
            )
        )
        winners = [r for r in responses if r.status_code == 201]
        losers = [r for r in responses if r.status_code != 201]
        assert len({r.json()["id"] for r in winners}) == 1
        quantity = winners[0].json()["quantity"]
        assert len(winners) == 10  # every request with the winning body replays it
        assert {(r.status_code, r.json()["code"]) for r in losers} == {(409, "idempotency_conflict")}
        assert await snapshot(sessionmaker, customer) == (format_usd(30_000 - quantity), 2, 1)

    async def test_key_freed_by_a_failed_claim_is_taken_by_the_waiter(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer(balance="1")
        headers = {"Authorization": f"Bearer {customer.api_key}", "Idempotency-Key": "first-fails"}
        too_big, fits = await asyncio.gather(
            client.post("/v1/orders", json={"email": "a@example.com", "quantity": 5000}, headers=headers),
            client.post("/v1/orders", json={"email": "a@example.com", "quantity": 1000}, headers=headers),
        )
        # Whichever ran first: the affordable order is placed once; the other is refused for
        # its balance (it ran first and freed the key) or as a conflict (it came second).
        assert fits.status_code == 201
        assert too_big.status_code in (402, 409)
        assert await snapshot(sessionmaker, customer) == ("0.00", 2, 1)
