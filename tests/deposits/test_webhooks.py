"""Processor webhooks: signatures, exactly-once crediting, bonuses, unmatched deposits."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.audit.service import Actor
from ordersvc.deposits import service as deposits
from tests.conftest import MakeCustomer
from tests.deposits.conftest import (
    CHAIN_SECRETS,
    AddressFor,
    chain_body,
    chain_headers,
    nowpayments_headers,
    tx_hash,
)
from tests.legacy.helpers import call, snapshot
from tests.orders.test_endpoints import auth


async def deposits_count(maker: async_sessionmaker[AsyncSession]) -> int:
    async with maker() as session:
        return (await session.execute(sa.text("SELECT count(*) FROM deposits"))).scalar_one()


class TestChainWatcher:
    async def test_final_deposit_is_credited_with_its_bonus(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker, tiers
    ) -> None:
        await tiers(("100", "5%"), ("1000", "7.5%"))
        customer = await make_customer()
        body = chain_body(await address_for(customer.account_id), "250.5")
        response = await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))
        assert (response.status_code, response.json()) == (200, {"status": "credited"})
        # 250.500 + 5% = 12.525
        assert await snapshot(sessionmaker, customer) == ("263.025", 2, 0)

    async def test_payments_name_the_deposit_network_for_the_deposit_and_its_bonus(
        self,
        hooks: httpx.AsyncClient,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        address_for: AddressFor,
        tiers,
    ) -> None:
        await tiers(("100", "5%"))
        customer = await make_customer(balance="1")
        body = chain_body(await address_for(customer.account_id), "100")
        assert (await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))).status_code == 200
        payments = (await client.get("/v1/payments", headers=auth(customer))).json()["data"]
        assert [(p["kind"], p["amount"], p["network"]) for p in payments] == [
            ("bonus", "5.00", "USDT-TRC20"),
            ("deposit", "100.00", "USDT-TRC20"),
            ("credit", "1.00", None),
        ]

    async def test_redelivery_and_20_concurrent_deliveries_credit_once(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker, tiers
    ) -> None:
        customer = await make_customer()
        body = chain_body(await address_for(customer.account_id), "40")
        responses = await asyncio.gather(
            *(hooks.post("/webhooks/chain", content=body, headers=chain_headers(body)) for _ in range(20))
        )
        statuses = sorted(r.json()["status"] for r in responses)
        assert statuses == ["credited"] + ["duplicate"] * 19
        again = await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))
        assert again.json() == {"status": "duplicate"}
        assert await snapshot(sessionmaker, customer) == ("40.00", 1, 0)

    @pytest.mark.parametrize(
        "make_headers",
        [
            lambda body: {},
            lambda body: chain_headers(body, secrets=["wrong"]),
            lambda body: chain_headers(body, timestamp=int(time.time()) - 301),  # stale
            lambda body: chain_headers(body, timestamp=int(time.time()) + 301),  # from the future
            lambda body: chain_headers(body + b" "),  # body changed after signing
            lambda body: {"Ordersvc-Signature": "v1=" + "0" * 64},
            lambda body: {"Ordersvc-Signature": "t=abc,v1=zz"},
        ],
    )
    async def test_bad_signature_is_401_and_stores_nothing(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker, make_headers
    ) -> None:
        customer = await make_customer()
        body = chain_body(await address_for(customer.account_id))
        before = await deposits_count(sessionmaker)
        response = await hooks.post("/webhooks/chain", content=body, headers=make_headers(body))
        assert (response.status_code, response.json()["code"]) == (401, "bad_signature")
        assert await deposits_count(sessionmaker) == before
        assert await snapshot(sessionmaker, customer) == ("0.00", 0, 0)

    @pytest.mark.parametrize(
        "secrets", [CHAIN_SECRETS[:1], CHAIN_SECRETS[1:], CHAIN_SECRETS, ["wrong", CHAIN_SECRETS[1]]]
    )
    async def test_rotated_secrets_each_verify(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, secrets: list[str]
    ) -> None:
        customer = await make_customer()
        body = chain_body(await address_for(customer.account_id))
        response = await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body, secrets=secrets))
        assert response.json() == {"status": "credited"}

    async def test_not_yet_final_stores_nothing(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        customer = await make_customer()
        address, tx = await address_for(customer.account_id), tx_hash()
        early = chain_body(address, tx=tx, confirmations=19)
        assert (await hooks.post("/webhooks/chain", content=early, headers=chain_headers(early))).json() == {
            "status": "not_final"
        }
        final = chain_body(address, tx=tx, confirmations=20)
        assert (await hooks.post("/webhooks/chain", content=final, headers=chain_headers(final))).json() == {
            "status": "credited"
        }
        assert (await snapshot(sessionmaker, customer))[0] == "100.00"

    async def test_unknown_address_is_kept_unmatched_then_assigned(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, tiers
    ) -> None:
        await tiers(("100", "5%"))
        body = chain_body(f"Tunknown{uuid.uuid4().hex}", "120")
        response = await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))
        assert response.json() == {"status": "unmatched"}
        async with sessionmaker() as session:
            tx_hash = json.loads(body)["tx_hash"]
            unmatched = [d for d in await deposits.unmatched_deposits(session) if d.tx_hash == tx_hash]
        assert len(unmatched) == 1
        customer = await make_customer()
        async with sessionmaker.begin() as session:
            await deposits.assign_unmatched(
                session, deposit_id=unmatched[0].id, email=customer.email, actor=Actor.local_operator()
            )
        assert await snapshot(sessionmaker, customer) == ("126.00", 2, 0)
        async with sessionmaker.begin() as session:
            with pytest.raises(deposits.DepositNotUnmatched):
                await deposits.assign_unmatched(
                    session, deposit_id=unmatched[0].id, email=customer.email, actor=Actor.local_operator()
                )

    @pytest.mark.parametrize(
        "payload",
        [
            {"network": "DOGE", "address": "x", "tx_hash": "y", "amount_usd": "1", "confirmations": 99},
            {"network": "BTC", "address": "x", "tx_hash": "y", "amount_usd": "-1", "confirmations": 99},
            {"network": "BTC", "address": "x", "tx_hash": "y", "amount_usd": "NaN", "confirmations": 99},
            {"network": "BTC", "tx_hash": "y", "amount_usd": "1", "confirmations": 99},
            {"network": "BTC", "address": "x", "tx_hash": "y", "amount_usd": "1", "confirmations": "9"},
        ],
    )
    async def test_signed_but_unreadable_payload_is_422(
        self, hooks: httpx.AsyncClient, sessionmaker, payload: dict[str, Any]
    ) -> None:
        body = json.dumps(payload).encode()
        before = await deposits_count(sessionmaker)
        response = await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))
        assert (response.status_code, response.json()["code"]) == (422, "invalid_payload")
        assert await deposits_count(sessionmaker) == before

    async def test_unconfigured_processor_is_404(self, client: httpx.AsyncClient) -> None:
        body = chain_body("Tx")
        assert (await client.post("/webhooks/chain", content=body, headers=chain_headers(body))).status_code == 404


class TestBonusTiers:
    @pytest.mark.parametrize(
        ("amount", "balance"),
        [
            ("99.999", "99.999"),  # just under the first tier: no bonus
            ("100", "105.00"),  # exactly at the threshold
            ("100.019", "105.019"),  # 5% of 100.019 = 5.00095, rounded down to 5.000
            ("999.999", "1049.998"),  # 5% of 999.999 = 49.99995 -> 49.999
            ("1000", "1075.00"),  # the highest tier reached applies
        ],
    )
    async def test_tier_edges_and_rounding(
        self,
        hooks: httpx.AsyncClient,
        make_customer: MakeCustomer,
        address_for: AddressFor,
        sessionmaker,
        tiers,
        amount: str,
        balance: str,
    ) -> None:
        await tiers(("100", "5%"), ("1000", "7.5%"))
        customer = await make_customer()
        body = chain_body(await address_for(customer.account_id), amount)
        await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))
        assert (await snapshot(sessionmaker, customer))[0] == balance

    async def test_public_list(self, client: httpx.AsyncClient, tiers) -> None:
        await tiers(("1000", "7.5%"), ("100", "5"))
        response = await client.get("/v1/bonus-tiers")
        assert response.json() == {
            "data": [{"threshold": "100.00", "percent": "5"}, {"threshold": "1000.00", "percent": "7.5"}]
        }


def nowpayments_ipn(**fields: Any) -> dict[str, Any]:
    payload = {
        "payment_id": int(uuid.uuid4().int % 10**10),
        "parent_payment_id": None,
        "invoice_id": None,
        "payment_status": "finished",
        "pay_address": "x",
        "payin_extra_id": None,
        "price_amount": 50,
        "price_currency": "usd",
        "pay_amount": 50.2,
        "actually_paid": 50.2,
        "actually_paid_at_fiat": 0,
        "pay_currency": "usdttrc20",
        "order_id": None,
        "order_description": None,
        "purchase_id": "5312334567",
        "outcome_amount": 49.9,
        "outcome_currency": "usdttrc20",
        "fee": {"currency": "usdttrc20", "depositFee": 0.1, "withdrawalFee": 0, "serviceFee": 0},
    }
    payload.update(fields)
    return payload


class TestNowPayments:
    async def post(self, hooks: httpx.AsyncClient, payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
        body = json.dumps(payload).encode()
        return await hooks.post("/webhooks/nowpayments", content=body, headers=nowpayments_headers(payload, **kwargs))

    async def test_finished_is_credited_once(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        customer = await make_customer()
        ipn = nowpayments_ipn(pay_address=await address_for(customer.account_id))
        assert (await self.post(hooks, ipn)).json() == {"status": "credited"}
        assert (await self.post(hooks, ipn)).json() == {"status": "duplicate"}
        assert await snapshot(sessionmaker, customer) == ("50.00", 1, 0)

    async def test_20_concurrent_identical_ipns_credit_once(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        customer = await make_customer()
        ipn = nowpayments_ipn(pay_address=await address_for(customer.account_id))
        responses = await asyncio.gather(*(self.post(hooks, ipn) for _ in range(20)))
        assert sorted(r.json()["status"] for r in responses) == ["credited"] + ["duplicate"] * 19
        assert await snapshot(sessionmaker, customer) == ("50.00", 1, 0)

    async def test_partially_paid_credits_what_was_received(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        customer = await make_customer()
        address = await address_for(customer.account_id)
        ratio = nowpayments_ipn(pay_address=address, payment_status="partially_paid", actually_paid=20.08)
        assert (await self.post(hooks, ratio)).json() == {"status": "credited"}  # 50 * 20.08 / 50.2 = 20.000
        fiat = nowpayments_ipn(pay_address=address, payment_status="partially_paid", actually_paid_at_fiat=12.3456)
        assert (await self.post(hooks, fiat)).json() == {"status": "credited"}  # 12.345 (rounded down)
        assert await snapshot(sessionmaker, customer) == ("32.345", 2, 0)

    @pytest.mark.parametrize("status", ["waiting", "confirming", "confirmed", "sending", "failed", "expired"])
    async def test_other_statuses_store_nothing(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker, status
    ) -> None:
        customer = await make_customer()
        ipn = nowpayments_ipn(pay_address=await address_for(customer.account_id), payment_status=status)
        assert (await self.post(hooks, ipn)).json() == {"status": "not_final"}
        assert await snapshot(sessionmaker, customer) == ("0.00", 0, 0)

    async def test_bad_or_missing_signature_is_401(self, hooks: httpx.AsyncClient, sessionmaker) -> None:
        ipn = nowpayments_ipn()
        before = await deposits_count(sessionmaker)
        assert (await self.post(hooks, ipn, secret="wrong")).status_code == 401
        tampered = json.dumps({**ipn, "actually_paid_at_fiat": 5000}).encode()
        response = await hooks.post("/webhooks/nowpayments", content=tampered, headers=nowpayments_headers(ipn))
        assert response.status_code == 401
        assert (await hooks.post("/webhooks/nowpayments", content=b"{}")).status_code == 401
        assert await deposits_count(sessionmaker) == before

    async def test_unknown_address_is_unmatched(self, hooks: httpx.AsyncClient) -> None:
        assert (await self.post(hooks, nowpayments_ipn(pay_address="nobody-here"))).json() == {"status": "unmatched"}


class TestCustomerViews:
    async def test_deposits_list_and_legacy_payments(
        self, hooks: httpx.AsyncClient, client: httpx.AsyncClient, make_customer: MakeCustomer, address_for, tiers
    ) -> None:
        await tiers(("100", "5%"))
        customer = await make_customer()
        address = await address_for(customer.account_id)
        for amount in ("10", "200"):
            body = chain_body(address, amount)
            await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))
        listed = (await client.get("/v1/deposits", headers={"X-API-Key": customer.api_key})).json()
        assert [(d["amount"], d["bonus"], d["network"]) for d in listed["data"]] == [
            ("200.00", "10.00", "USDT-TRC20"),
            ("10.00", "0.00", "USDT-TRC20"),
        ]
        assert all(d["tx_hash"] for d in listed["data"])
        legacy = (await call(client, customer.api_key, {"action": "payments"})).json()
        assert [p["amount"] for p in legacy["payments"]] == [10.0, 200.0, 10.0]
        kinds = (await client.get("/v1/payments", headers={"X-API-Key": customer.api_key})).json()["data"]
        assert [p["kind"] for p in kinds] == ["bonus", "deposit", "deposit"]


class TestHostileInput:
    @pytest.mark.parametrize(
        ("route", "headers"),
        [
            ("/webhooks/chain", {"Ordersvc-Signature": f"t={int(time.time())},v1=\xe9".encode("latin-1")}),
            ("/webhooks/chain", {"Ordersvc-Signature": "t=\xb2,v1=00".encode("latin-1")}),
            ("/webhooks/chain", {"Ordersvc-Signature": "t=" + "9" * 5000 + ",v1=00"}),
            ("/webhooks/btcpay", {"BTCPay-Sig": "sha256=\xe9".encode("latin-1")}),
            ("/webhooks/nowpayments", {"x-nowpayments-sig": "\xe9".encode("latin-1")}),
        ],
    )
    async def test_garbage_signature_headers_are_401(self, hooks: httpx.AsyncClient, route: str, headers) -> None:
        body = json.dumps(nowpayments_ipn()).encode()
        response = await hooks.post(route, content=body, headers=headers)
        assert response.status_code in (401, 404)  # btcpay needs its API settings to be enabled here
        assert response.status_code != 500

    async def test_oversized_body_is_refused_unread(self, hooks: httpx.AsyncClient) -> None:
        response = await hooks.post("/webhooks/chain", content=b"x" * (300 * 1024))
        assert response.status_code == 401

    async def test_nul_and_lone_surrogates_are_stored_cleaned(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        customer = await make_customer()
        payload = json.loads(chain_body(await address_for(customer.account_id), "5"))
        payload["note"] = "a\u0000b\ud800c"
        body = json.dumps(payload).encode()
        assert (await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))).json() == {
            "status": "credited"
        }
        async with sessionmaker() as session:
            note = (
                await session.execute(
                    sa.text("SELECT payload->>'note' FROM deposits WHERE tx_hash = :t"), {"t": payload["tx_hash"]}
                )
            ).scalar_one()
        assert note == "a\ufffdb\ufffdc"
        nul_address = json.loads(chain_body("T\u0000nobody", "5"))
        body = json.dumps(nul_address).encode()
        assert (await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))).json() == {
            "status": "unmatched"
        }


class TestNowPaymentsDetails:
    async def test_signature_built_by_their_node_recipe_verifies(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        import hashlib
        import hmac

        from tests.deposits.conftest import NOWPAYMENTS_SECRET

        customer = await make_customer()
        ipn = nowpayments_ipn(
            pay_address=await address_for(customer.account_id),
            order_description="Пополнение баланса",
            fee={"currency": "usdttrc20", "depositFee": 5e-7, "withdrawalFee": 0, "serviceFee": 0},
        )
        # JSON.stringify of the recursively sorted object: raw UTF-8, `5e-7`, integers bare.
        node = (
            '{"actually_paid":50.2,"actually_paid_at_fiat":0,"fee":{"currency":"usdttrc20","depositFee":5e-7,'
            '"serviceFee":0,"withdrawalFee":0},"invoice_id":null,"order_description":"Пополнение баланса",'
            f'"order_id":null,"outcome_amount":49.9,"outcome_currency":"usdttrc20","parent_payment_id":null,'
            f'"pay_address":"{ipn["pay_address"]}","pay_amount":50.2,"pay_currency":"usdttrc20",'
            f'"payin_extra_id":null,"payment_id":{ipn["payment_id"]},"payment_status":"finished",'
            '"price_amount":50,"price_currency":"usd","purchase_id":"5312334567"}'
        )
        signature = hmac.new(NOWPAYMENTS_SECRET.encode(), node.encode(), hashlib.sha512).hexdigest()
        body = json.dumps(ipn, ensure_ascii=False).encode()
        response = await hooks.post("/webhooks/nowpayments", content=body, headers={"x-nowpayments-sig": signature})
        assert response.json() == {"status": "credited"}

    async def test_non_usd_price_is_refused_and_stores_nothing(self, hooks: httpx.AsyncClient, sessionmaker) -> None:
        ipn = nowpayments_ipn(price_currency="eur", actually_paid_at_fiat=100)
        before = await deposits_count(sessionmaker)
        response = await TestNowPayments().post(hooks, ipn)
        assert (response.status_code, response.json()["code"]) == (422, "invalid_payload")
        assert await deposits_count(sessionmaker) == before

    async def test_absurd_numbers_are_422(self, hooks: httpx.AsyncClient) -> None:
        ipn = nowpayments_ipn(price_amount="1e600000", pay_amount="1e-600000", actually_paid=1)
        assert (await TestNowPayments().post(hooks, ipn)).status_code == 422

    async def test_order_id_names_the_account(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer()
        ipn = nowpayments_ipn(pay_address=f"fresh-{uuid.uuid4().hex}", order_id=customer.email)
        assert (await TestNowPayments().post(hooks, ipn)).json() == {"status": "credited"}
        assert (await snapshot(sessionmaker, customer))[0] == "50.00"

    async def test_redelivery_with_another_amount_is_logged_not_credited(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker, caplog
    ) -> None:
        customer = await make_customer()
        ipn = nowpayments_ipn(pay_address=await address_for(customer.account_id), payment_status="partially_paid",
                              actually_paid=25.1)  # fmt: skip
        await TestNowPayments().post(hooks, ipn)
        with caplog.at_level("WARNING", logger="ordersvc.deposits.service"):
            finished = {**ipn, "payment_status": "finished", "actually_paid": 50.2}
            assert (await TestNowPayments().post(hooks, finished)).json() == {"status": "duplicate"}
        assert "redelivered with amount 50000 mills, recorded 25000" in caplog.text
        assert (await snapshot(sessionmaker, customer))[0] == "25.00"

    async def test_one_transfer_reported_by_two_processors_is_credited_once(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        customer = await make_customer()
        address, tx = await address_for(customer.account_id), tx_hash()
        body = chain_body(address, "50", tx=tx)
        assert (await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))).json()["status"] == (
            "credited"
        )
        ipn = nowpayments_ipn(pay_address=address, payin_hash=tx)
        assert (await TestNowPayments().post(hooks, ipn)).json() == {"status": "duplicate"}
        assert (await snapshot(sessionmaker, customer))[0] == "50.00"
