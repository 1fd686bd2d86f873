"""Coupons: case-insensitive, once per account, a global limit that holds under races."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.coupons import service as coupons
from ordersvc.timestamps import utc_now
from tests.conftest import MakeCustomer
from tests.legacy.helpers import call, snapshot


@pytest.fixture
def make_coupon(sessionmaker: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    async def make(amount_mills: int = 10_000, **options: object) -> str:
        code = f"Promo-{uuid.uuid4().hex[:8]}"
        async with sessionmaker.begin() as session:
            await coupons.create_coupon(session, code=code, amount_mills=amount_mills, **options)  # type: ignore[arg-type]
        return code

    return make


async def redeem(client: httpx.AsyncClient, key: str, code: str) -> httpx.Response:
    return await client.post("/v1/coupons/redeem", json={"code": code}, headers={"X-API-Key": key})


class TestRedeem:
    async def test_redeem_credits_a_coupon_payment(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, make_coupon, sessionmaker
    ) -> None:
        code = await make_coupon(12_345)
        customer = await make_customer()
        response = await redeem(client, customer.api_key, code.upper())
        assert (response.status_code, response.json()) == (201, {"code": code.lower(), "amount": "12.345"})
        assert await snapshot(sessionmaker, customer) == ("12.345", 1, 0)
        legacy = (await call(client, customer.api_key, {"action": "payments"})).json()["payments"]
        assert legacy == [{"amount": 12.345, "created": legacy[0]["created"], "coupon": code.lower()}]

    async def test_refusals_are_distinct_and_change_nothing(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, make_coupon, sessionmaker
    ) -> None:
        customer = await make_customer()
        used = await make_coupon()
        await redeem(client, customer.api_key, used)
        before = await snapshot(sessionmaker, customer)
        expired = await make_coupon(expires_at=utc_now() - timedelta(seconds=1))
        disabled = await make_coupon()
        async with sessionmaker.begin() as session:
            await coupons.disable_coupon(session, code=disabled)
        exhausted = await make_coupon(max_redemptions=1)
        await redeem(client, (await make_customer()).api_key, exhausted)
        cases = {
            "no-such-code": (404, "coupon_not_found"),
            "!!": (404, "coupon_not_found"),
            expired: (409, "coupon_expired"),
            disabled: (409, "coupon_disabled"),
            exhausted: (409, "coupon_exhausted"),
            used: (409, "coupon_already_redeemed"),
        }
        for code, expected in cases.items():
            response = await redeem(client, customer.api_key, code)
            assert (response.status_code, response.json()["code"]) == expected, code
            assert response.json()["detail"]
        assert await snapshot(sessionmaker, customer) == before

    async def test_global_limit_holds_under_concurrent_redemption(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, make_coupon, sessionmaker
    ) -> None:
        code = await make_coupon(1_000, max_redemptions=5)
        customers = [await make_customer() for _ in range(20)]
        responses = await asyncio.gather(*(redeem(client, c.api_key, code) for c in customers))
        assert Counter(r.status_code for r in responses) == {201: 5, 409: 15}
        balances = [(await snapshot(sessionmaker, c))[0] for c in customers]
        assert Counter(balances) == {"1.00": 5, "0.00": 15}

    async def test_one_account_racing_itself_redeems_once(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, make_coupon, sessionmaker
    ) -> None:
        code = await make_coupon(1_000)
        customer = await make_customer()
        responses = await asyncio.gather(*(redeem(client, customer.api_key, code) for _ in range(10)))
        assert Counter(r.status_code for r in responses) == {201: 1, 409: 9}
        assert await snapshot(sessionmaker, customer) == ("1.00", 1, 0)


class TestOperator:
    async def test_codes_are_case_insensitive_and_unique(self, sessionmaker, make_coupon) -> None:
        code = await make_coupon()
        async with sessionmaker.begin() as session:
            with pytest.raises(coupons.CouponExists):
                await coupons.create_coupon(session, code=code.upper(), amount_mills=1)

    @pytest.mark.parametrize("code", ["", "ab", "has space", "x" * 65, "ünï"])
    async def test_malformed_code_is_refused(self, sessionmaker, code: str) -> None:
        async with sessionmaker.begin() as session:
            with pytest.raises(coupons.InvalidCouponCode):
                await coupons.create_coupon(session, code=code, amount_mills=1)
