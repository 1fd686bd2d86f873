"""The per-API-key rate limit: in-process, and shared through Redis."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
import uuid

import pytest

from tests.conftest import MakeCustomer
from tests.legacy.helpers import snapshot
from tests.ops.conftest import app_client
from tests.orders.test_endpoints import auth
from tests.support import free_port, rate_limit_remaining

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not redis_answers(), reason="no Redis on 127.0.0.1:6379")


class TestInProcess:
    async def test_rest_is_429_with_retry_after_and_ratelimit_headers(
        self, database_url: str, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer, other = await make_customer(balance="5"), await make_customer()
        async with app_client(rate_limit_per_second=0.5, rate_limit_burst=3) as (_, client):
            answers = [await client.get("/v1/balance", headers=auth(customer)) for _ in range(3)]
            refused = await client.post(
                "/v1/orders", json={"email": "a@example.com", "quantity": 500}, headers=auth(customer)
            )
            others = await client.get("/v1/balance", headers=auth(other))
            unauthenticated = await client.get("/v1/balance", headers={"Authorization": "Bearer osk_nope"})
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [rate_limit_remaining(a) for a in answers] == ["2", "1", "0"]
        assert answers[0].headers["RateLimit-Policy"] == '"burst";q=3;w=6'  # 3 requests, refilled at 0.5/s
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "rate_limited"
        assert refused.headers["Retry-After"] == "2"  # one token at 0.5/s
        assert rate_limit_remaining(refused) == "0"
        assert refused.headers["RateLimit"] == '"burst";r=0;t=6'
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)  # the refused order changed nothing
        assert others.status_code == 200  # every key has its own bucket
        assert unauthenticated.status_code == 401

    async def test_legacy_answers_too_many_requests_with_200(
        self, database_url: str, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="5")
        async with app_client(rate_limit_per_second=0.5, rate_limit_burst=2) as (_, client):
            answers = [await client.post(f"/api?key={customer.api_key}", json={"action": "balance"}) for _ in range(3)]
        assert [a.text for a in answers] == ['{"balance": 5.00}', '{"balance": 5.00}', '{"error":"Too many requests."}']
        assert answers[2].status_code == 200
        assert answers[2].headers["Retry-After"] == "2"

    async def test_a_mass_order_takes_a_token_per_line(
        self, database_url: str, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        """A batch of 100 orders is 100 orders' worth of the limit (at most the burst): one token
        per request would let a key place, and ask consent of, 100 times its limit."""
        customer = await make_customer(balance="50")
        lines = [{"email": f"r{i}@example.com", "quantity": 500} for i in range(5)]
        async with app_client(rate_limit_per_second=0.1, rate_limit_burst=8) as (_, client):
            first = await client.post("/v1/orders/batch", json={"orders": lines}, headers=auth(customer))
            second = await client.post("/v1/orders/batch", json={"orders": lines}, headers=auth(customer))
            single = await client.post(
                "/v1/orders", json={"email": "a@example.com", "quantity": 500}, headers=auth(customer)
            )
            big = [{"email": f"b{i}@example.com", "quantity": 500} for i in range(20)]
        assert first.status_code == 200
        assert rate_limit_remaining(first) == "3"  # 8 - 5
        assert second.status_code == 429  # 3 tokens left, 5 lines
        assert single.status_code == 201  # what is left still serves single orders
        assert await snapshot(sessionmaker, customer) == ("47.00", 7, 6)
        # A batch larger than the burst takes the whole (full) bucket, and passes.
        async with app_client(rate_limit_per_second=0.1, rate_limit_burst=8) as (_, client):
            whole = await client.post("/v1/orders/batch", json={"orders": big}, headers=auth(customer))
            after = await client.get("/v1/balance", headers=auth(customer))
        assert whole.status_code == 200
        assert whole.json()["placed"] == 20
        assert after.status_code == 429

    async def test_the_panel_api_answers_too_many_requests_in_its_dialect(
        self, database_url: str, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer(balance="5")
        add = {"key": customer.api_key, "action": "add", "service": "1", "link": "a@example.com", "quantity": "500"}
        async with app_client(rate_limit_per_second=0.5, rate_limit_burst=2) as (_, client):
            answers = [
                await client.post("/api/v2", data={"key": customer.api_key, "action": "balance"}),
                await client.post("/api/v2", data=add),
                await client.post("/api/v2", data=add),
                await client.post("/api/v2", data={"key": customer.api_key, "action": "status", "order": "1"}),
            ]
        assert [a.status_code for a in answers] == [200, 200, 200, 200]
        assert answers[0].json() == {"balance": "5.00", "currency": "USD"}
        assert isinstance(answers[1].json()["order"], int)
        assert [a.json() for a in answers[2:]] == [{"error": "Too many requests."}] * 2
        assert await snapshot(sessionmaker, customer) == ("4.50", 2, 1)

    async def test_the_bucket_refills(self, database_url: str, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        async with app_client(rate_limit_per_second=2, rate_limit_burst=1) as (_, client):
            first = await client.get("/v1/balance", headers=auth(customer))
            second = await client.get("/v1/balance", headers=auth(customer))  # well within 0.5 s
            await asyncio.sleep(0.6)
            third = await client.get("/v1/balance", headers=auth(customer))
        assert [first.status_code, second.status_code, third.status_code] == [200, 429, 200]


@needs_redis
class TestSharedThroughRedis:
    async def test_two_replicas_share_one_bucket(self, database_url: str, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        settings = {"rate_limit_per_second": 0.5, "rate_limit_burst": 4, "redis_url": REDIS_URL}
        async with app_client(**settings) as (_, one), app_client(**settings) as (_, two):
            statuses = [
                (await (one if n % 2 else two).get("/v1/balance", headers=auth(customer))).status_code for n in range(6)
            ]
            legacy = await one.post(f"/api?key={customer.api_key}", json={"action": "balance"})
        assert statuses == [200, 200, 200, 200, 429, 429]
        assert legacy.text == '{"error":"Too many requests."}'

    async def test_concurrent_requests_never_take_more_than_the_burst(
        self, database_url: str, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer()
        settings = {"rate_limit_per_second": 0.1, "rate_limit_burst": 10, "redis_url": REDIS_URL}
        async with app_client(**settings) as (_, one), app_client(**settings) as (_, two):
            answers = await asyncio.gather(
                *((one if n % 2 else two).get("/v1/balance", headers=auth(customer)) for n in range(40))
            )
        assert sorted(a.status_code for a in answers) == [200] * 10 + [429] * 30

    async def test_an_unreachable_redis_lets_requests_through(
        self, database_url: str, make_customer: MakeCustomer, caplog
    ) -> None:
        customer = await make_customer()
        nowhere = f"redis://127.0.0.1:{free_port()}/0"
        async with app_client(rate_limit_per_second=1, rate_limit_burst=1, redis_url=nowhere) as (_, client):
            started = time.monotonic()
            answers = [await client.get("/v1/balance", headers=auth(customer)) for _ in range(3)]
            elapsed = time.monotonic() - started
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert "RateLimit" not in answers[0].headers  # nothing is claimed that was not counted
        assert elapsed < 3  # no retries against a store that is down
        assert "rate limit store unreachable" in caplog.text

    async def test_buckets_are_named_by_key_prefix_and_digest(
        self, database_url: str, make_customer: MakeCustomer
    ) -> None:
        import redis.asyncio as redis

        customer = await make_customer()
        prefix = f"ordersvc-test-{uuid.uuid4().hex[:6]}:"
        async with app_client(rate_limit_per_second=1, rate_limit_burst=5, redis_url=REDIS_URL) as (app, client):
            app.state.rate_limiter.prefix = prefix
            await client.get("/v1/balance", headers=auth(customer))
        store = redis.Redis.from_url(REDIS_URL)
        try:
            keys = [k.decode() for k in await store.keys(f"{prefix}*")]
        finally:
            await store.aclose()
        assert keys == [
            f"{prefix}key:{customer.api_key[:12]}.{hashlib.sha256(customer.api_key.encode()).hexdigest()[:16]}"
        ]
        assert customer.api_key[12:] not in keys[0]
