"""Request limits: request id, body size, time; each refusal changes nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.request_db import SessionDep
from tests.conftest import MakeCustomer
from tests.legacy.helpers import snapshot
from tests.ops.conftest import app_client
from tests.orders.test_endpoints import auth
from tests.support import Customer


class TestRequestId:
    async def test_a_valid_request_id_is_kept_and_returned(self, client) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "req-42.abc:1"})
        assert response.headers["X-Request-ID"] == "req-42.abc:1"

    @pytest.mark.parametrize("sent", [None, "", "has spaces", "x" * 129, 'quote"d'])
    async def test_a_missing_or_odd_request_id_is_replaced(self, client, sent: str | None) -> None:
        headers = {} if sent is None else {"X-Request-ID": sent}
        returned = (await client.get("/healthz", headers=headers)).headers["X-Request-ID"]
        assert returned != sent
        assert len(returned) == 32
        int(returned, 16)


class TestBodyLimit:
    async def test_an_oversized_body_is_413_and_changes_nothing(
        self, database_url: str, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer(balance="5")
        body = json.dumps({"email": "a@example.com", "quantity": 500, "padding": "x" * 2000}).encode()
        async with app_client(max_body_bytes=1000) as (_, client):
            declared = await client.post(
                "/v1/orders", content=body, headers={**auth(customer), "Content-Type": "application/json"}
            )

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
                for start in range(0, len(body), 100):
                    yield body[start : start + 100]

            streamed = await client.post(
                "/v1/orders", content=chunks(), headers={**auth(customer), "Content-Type": "application/json"}
            )
            small = await client.post(
                "/v1/orders", json={"email": "a@example.com", "quantity": 500}, headers=auth(customer)
            )
        for refused in (declared, streamed):
            assert refused.status_code == 413
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["code"] == "body_too_large"
        assert small.status_code == 201
        assert await snapshot(sessionmaker, customer) == ("4.50", 2, 1)

    async def test_the_legacy_api_keeps_its_own_limit_and_answer(
        self, database_url: str, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="5")
        async with app_client(max_body_bytes=100, legacy_max_body_bytes=4000) as (_, client):
            fits = await client.post(f"/api?key={customer.api_key}", json={"action": "balance", "padding": "x" * 1000})
            too_big = await client.post(
                f"/api?key={customer.api_key}", json={"action": "balance", "padding": "x" * 5000}
            )
        assert fits.text == '{"balance": 5.00}'
        assert too_big.text == '{"error":"Invalid params."}'


@pytest.fixture
def hold_account(sessionmaker: async_sessionmaker[AsyncSession]):
    """Lock an account's row from another transaction, so that its next order waits."""

    async def hold(customer: Customer, release: asyncio.Event) -> None:
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("SELECT 1 FROM accounts WHERE id = :id FOR UPDATE"), {"id": customer.account_id}
            )
            await release.wait()

    return hold


class TestTimeLimit:
    async def test_a_request_over_its_time_is_503_and_rolled_back(
        self, database_url: str, make_customer: MakeCustomer, sessionmaker, hold_account
    ) -> None:
        customer = await make_customer(balance="5")
        release = asyncio.Event()
        holder = asyncio.create_task(hold_account(customer, release))
        await asyncio.sleep(0.2)
        try:
            async with app_client(request_timeout_seconds=0.5) as (_, client):
                rest = await client.post(
                    "/v1/orders", json={"email": "t@example.com", "quantity": 500}, headers=auth(customer)
                )
                legacy = await client.post(
                    f"/api?key={customer.api_key}", json={"action": "order", "email": "t@example.com", "quantity": 500}
                )
        finally:
            release.set()
            await holder
        assert rest.status_code == 503
        assert rest.json()["code"] == "timeout"
        assert (legacy.status_code, legacy.text) == (200, '{"error":"Request timed out."}')
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)


class TestDatabaseLimits:
    async def test_every_connection_carries_the_statement_and_idle_timeouts(self, database_url: str) -> None:
        settings = {"db_statement_timeout_ms": 1500, "db_idle_in_transaction_timeout_ms": 7000}
        async with app_client(**settings) as (app, _), app.state.engine.connect() as connection:
            statement = (await connection.execute(sa.text("SHOW statement_timeout"))).scalar()
            idle = (await connection.execute(sa.text("SHOW idle_in_transaction_session_timeout"))).scalar()
        assert (statement, idle) == ("1500ms", "7s")

    async def test_a_statement_over_its_time_is_a_503_not_a_crash(
        self, database_url: str, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer()
        # Any slow statement will do: the key lookup waits on a lock it cannot get.
        async with app_client(db_statement_timeout_ms=200) as (app, client), app.state.sessionmaker.begin() as session:
            await session.execute(sa.text("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE"))
            answer = await client.get("/v1/balance", headers=auth(customer))
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["code"] == "service_unavailable"


class TestCommitIsNeverCutShort:
    async def test_a_request_already_committing_is_answered_with_its_result(
        self, database_url: str, sessionmaker
    ) -> None:
        """The time limit stops at COMMIT: a commit that waits (here on a deferred unique check
        against another open transaction) finishes and is answered, never "not completed"."""
        table = f"deferred_{uuid.uuid4().hex[:8]}"
        async with sessionmaker.begin() as session:
            await session.execute(sa.text(f"CREATE TABLE {table} (k int UNIQUE DEFERRABLE INITIALLY DEFERRED)"))
        try:
            async with app_client(request_timeout_seconds=0.5) as (app, client):

                async def write(session: SessionDep) -> dict[str, str]:
                    await session.execute(sa.text(f"INSERT INTO {table} VALUES (1)"))
                    return {"status": "written"}

                app.add_api_route("/test/deferred", write, methods=["POST"])
                release = asyncio.Event()

                async def other_writer() -> None:
                    async with sessionmaker() as other:
                        await other.execute(sa.text(f"INSERT INTO {table} VALUES (1)"))
                        await release.wait()
                        await other.rollback()  # the request's commit may now go through

                holder = asyncio.create_task(other_writer())
                await asyncio.sleep(0.2)
                request = asyncio.create_task(client.post("/test/deferred"))
                await asyncio.sleep(1.0)  # well past the 0.5 s limit, waiting inside COMMIT
                release.set()
                await holder
                answer = await request
            assert (answer.status_code, answer.json()) == (200, {"status": "written"})
            async with sessionmaker() as session:
                assert (await session.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar() == 1
        finally:
            async with sessionmaker.begin() as session:
                await session.execute(sa.text(f"DROP TABLE {table}"))


class TestUnhandledErrors:
    async def test_a_bug_is_a_500_problem_with_the_request_id(self, database_url: str) -> None:
        async with app_client() as (app, client):

            async def broken() -> None:
                raise RuntimeError("a bug")

            app.add_api_route("/test/broken", broken)
            answer = await client.get("/test/broken", headers={"X-Request-ID": "bug-1"})
        assert answer.status_code == 500
        assert answer.headers["X-Request-ID"] == "bug-1"
        assert answer.json()["code"] == "internal_error"


class TestOutageClassification:
    def test_a_value_the_driver_cannot_encode_is_not_an_outage(self) -> None:
        import asyncpg

        from ordersvc.ops.dberrors import is_database_unavailable

        assert not is_database_unavailable(asyncpg.DataError("invalid input for query argument"))
        assert not is_database_unavailable(FileNotFoundError(2, "a bug's missing file"))
        assert not is_database_unavailable(RuntimeError("a bug"))
        assert is_database_unavailable(ConnectionRefusedError())
        assert is_database_unavailable(asyncpg.DeadlockDetectedError("deadlock detected"))

    async def test_a_server_that_is_down_is_an_outage(self, tmp_path) -> None:
        import asyncpg

        from ordersvc.ops.dberrors import is_database_unavailable

        with pytest.raises(OSError, match="No such file or directory") as raised:  # no server on this socket
            await asyncpg.connect(host=str(tmp_path), port=5999, user="postgres", timeout=2)
        assert is_database_unavailable(raised.value)
