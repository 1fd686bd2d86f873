"""ordersvc on a cluster: the leader killed under load, a planned switchover, the libpq multi-host
URL and HAProxy's. Nothing acknowledged is lost, nothing is debited twice or without an order,
the ledger holds on the new leader, the old leader comes back as a standby, and the service
reconnects by itself."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from ordersvc import db
from ordersvc.accounts import service as accounts
from ordersvc.cluster import local
from ordersvc.config import Settings
from ordersvc.ledger import service as ledger
from ordersvc.money import parse_usd
from tests.support import ServerProcess, serve, unique_email

CLIENTS = 4
KILL_TO_FIRST_ORDER_SECONDS = 15


def cluster_url(layout: local.Layout, which: str) -> str:
    found = local.urls(layout)
    return found.multi_host if which == "multi_host" else found.haproxy


@pytest.fixture(scope="module")
def migrated(cluster: local.Layout) -> local.Layout:
    db.run_migrations(db.to_asyncpg_url(local.urls(cluster).multi_host))
    return cluster


@pytest.fixture
async def engine(migrated: local.Layout) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(db.to_asyncpg_url(local.urls(migrated).multi_host), Settings())
    yield engine
    await engine.dispose()


def server_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        ORDERSVC_RATE_LIMIT_PER_SECOND="0",
        ORDERSVC_MAILER_IN_SERVE="false",
        ORDERSVC_WEBHOOKS_IN_SERVE="false",
    )
    return env


@pytest.fixture(params=["multi_host", "haproxy"])
def server(request: pytest.FixtureRequest, migrated: local.Layout, tmp_path: Path) -> Iterator[ServerProcess]:
    with serve(tmp_path, env=server_env(cluster_url(migrated, request.param))) as process:
        yield process


async def new_customer(engine: AsyncEngine, balance: str) -> tuple[int, str]:
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker.begin() as session:
        account, api_key = await accounts.create_account(session, email=unique_email("cluster"))
        await ledger.credit(session, email=account.email, amount_mills=parse_usd(balance))
    assert account.id is not None
    return account.id, api_key


@dataclass
class Stream:
    """Idempotent orders sent by CLIENTS clients: each key is sent until it is acknowledged."""

    acknowledged: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    refusals: list[tuple[int, bytes]] = field(default_factory=list)  # what the outage answered
    successes: list[float] = field(default_factory=list)  # when each acknowledgement came


async def order_stream(base_url: str, api_key: str, email: str, stream: Stream, stop: asyncio.Event) -> None:
    async def client() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=20) as http:
            while not stop.is_set():
                key = str(uuid.uuid4())
                while True:  # the same key until acknowledged: a retry never places twice
                    try:
                        answer = await http.post(
                            "/v1/orders",
                            json={"email": email, "quantity": 500},
                            headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": key},
                        )
                    except httpx.TransportError as exc:
                        stream.refusals.append((0, repr(exc).encode()))
                        await asyncio.sleep(0.2)
                        continue
                    if answer.status_code in (200, 201):
                        stream.acknowledged[key] = answer.json()["id"]
                        stream.successes.append(time.monotonic())
                        break
                    stream.refusals.append((answer.status_code, answer.content))
                    await asyncio.sleep(0.2)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


async def check_books(engine: AsyncEngine, stream: Stream, account_id: int) -> None:
    """Every acknowledged order exists exactly once; no debit without an order; the ledger holds."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.text(
                    "SELECT o.public_id, count(p.id) FILTER (WHERE p.kind = 'order') FROM orders o"
                    " LEFT JOIN payments p ON p.order_id = o.id WHERE o.account_id = :account"
                    " GROUP BY o.public_id"
                ),
                {"account": account_id},
            )
        ).all()
        orphans = (
            await connection.execute(
                sa.text(
                    "SELECT count(*) FROM payments p WHERE p.kind = 'order'"
                    " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = p.order_id)"
                )
            )
        ).scalar_one()
    debits = dict(rows)
    assert set(stream.acknowledged.values()) <= set(debits)  # nothing acknowledged was lost
    assert len(set(stream.acknowledged.values())) == len(stream.acknowledged)  # one order per key
    assert all(count == 1 for count in debits.values())  # each order debited once
    assert orphans == 0
    maker = async_sessionmaker(engine)
    async with maker() as session:
        assert await ledger.verify(session) == []


def wait_for_standby_role(layout: local.Layout, n: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    role = ""
    while time.monotonic() < deadline:
        for member in local.members_status(layout):
            if member.get("name") == layout.member(n):
                role = str(member.get("role"))
                if role in ("sync_standby", "replica") and member.get("state") in ("running", "streaming"):
                    return role
        time.sleep(0.5)
    raise AssertionError(f"{layout.member(n)} did not rejoin as a standby: {local.members_status(layout)}")


class TestFailover:
    async def test_the_leader_killed_under_load_loses_nothing_and_the_service_reconnects(
        self, migrated: local.Layout, server: ServerProcess, engine: AsyncEngine
    ) -> None:
        account_id, api_key = await new_customer(engine, "1000")
        email = unique_email("failover-recipient")
        stream, stop = Stream(), asyncio.Event()
        running = asyncio.create_task(order_stream(server.base_url, api_key, email, stream, stop))
        await asyncio.sleep(2)
        before = len(stream.acknowledged)
        assert before > 0, stream.refusals[:3]
        old = local.leader(migrated)
        assert old is not None
        killed_at = time.monotonic()
        await asyncio.to_thread(local.kill_member, migrated, old)
        # Orders flow again through the new leader, without restarting the service.
        deadline = killed_at + 60
        while not [t for t in stream.successes if t > killed_at + 0.5] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        recovered = [t for t in stream.successes if t > killed_at + 0.5]
        await asyncio.sleep(2)
        stop.set()
        await asyncio.wait_for(running, 60)
        assert recovered, f"no order after the kill: {stream.refusals[-3:]}"
        assert recovered[0] - killed_at < KILL_TO_FIRST_ORDER_SECONDS
        assert server.process.poll() is None  # the same process throughout
        new = local.leader(migrated)
        assert new is not None
        assert new != old
        # What the outage answered: the documented 503, never a 500.
        assert {status for status, _ in stream.refusals} <= {503}, stream.refusals[:5]
        await check_books(engine, stream, account_id)
        # The old leader comes back as a standby of the new one (pg_rewind when it must).
        await asyncio.to_thread(local.up, migrated, timeout=120)
        await asyncio.to_thread(wait_for_standby_role, migrated, old, 120)


class TestSwitchover:
    async def test_a_planned_switchover_fails_nothing_beyond_the_outage_answer_and_loses_nothing(
        self, migrated: local.Layout, server: ServerProcess, engine: AsyncEngine
    ) -> None:
        account_id, api_key = await new_customer(engine, "1000")
        stream, stop = Stream(), asyncio.Event()
        running = asyncio.create_task(order_stream(server.base_url, api_key, unique_email("switchover"), stream, stop))
        await asyncio.sleep(2)
        old = local.leader(migrated)
        assert old is not None
        candidate = next(n for n in migrated.members() if n != old)
        switched_at = time.monotonic()
        await asyncio.to_thread(local.switchover, migrated, old, candidate)
        deadline = switched_at + 60
        while not [t for t in stream.successes if t > switched_at + 0.5] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)
        stop.set()
        await asyncio.wait_for(running, 60)
        assert local.leader(migrated) == candidate
        assert [t for t in stream.successes if t > switched_at + 0.5], stream.refusals[-3:]
        assert {status for status, _ in stream.refusals} <= {503}, stream.refusals[:5]
        await check_books(engine, stream, account_id)
        await asyncio.to_thread(wait_for_standby_role, migrated, old, 120)


class TestUrls:
    @pytest.mark.parametrize("which", ["multi_host", "haproxy"])
    async def test_both_urls_reach_the_leader(self, migrated: local.Layout, which: str) -> None:
        engine = db.create_engine(db.to_asyncpg_url(cluster_url(migrated, which)), Settings())
        try:
            async with engine.connect() as connection:
                in_recovery = (await connection.execute(sa.text("SELECT pg_is_in_recovery()"))).scalar_one()
                port = (await connection.execute(sa.text("SELECT inet_server_port()"))).scalar_one()
        finally:
            await engine.dispose()
        assert in_recovery is False
        assert port == migrated.pg_port(local.leader(migrated) or 0)
