from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.config import Settings
from ordersvc.deposits import service as deposits
from ordersvc.deposits.models import Network
from ordersvc.main import create_app
from ordersvc.money import parse_usd

CHAIN_SECRETS = ["chain-secret-new", "chain-secret-old"]
NOWPAYMENTS_SECRET = "nowpayments-ipn-secret"
BTCPAY_SECRET = "btcpay-webhook-secret"


@pytest.fixture(scope="module")
async def webhook_app(database_url: str) -> AsyncIterator[FastAPI]:
    """The app with every processor configured."""
    app = create_app(
        Settings(
            chain_webhook_secrets=CHAIN_SECRETS,
            nowpayments_ipn_secret=NOWPAYMENTS_SECRET,
            btcpay_webhook_secret=BTCPAY_SECRET,
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def hooks(webhook_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=webhook_app), base_url="http://hooks") as c:
        yield c


@pytest.fixture
async def tiers(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """Replace the global bonus tiers for one test; none are left behind."""

    async def set_tiers(*pairs: tuple[str, str]) -> None:
        async with sessionmaker.begin() as session:
            await session.execute(sa.text("DELETE FROM bonus_tiers"))
            for threshold, percent in pairs:
                await deposits.set_bonus_tier(
                    session, threshold_mills=parse_usd(threshold), basis_points=deposits.parse_percent(percent)
                )

    await set_tiers()
    yield set_tiers
    await set_tiers()


AddressFor = Callable[[int, Network], Awaitable[str]]


@pytest.fixture
def address_for(sessionmaker: async_sessionmaker[AsyncSession]) -> AddressFor:
    """Load a fresh address into the pool and assign it to the account."""
    import uuid

    async def assign(account_id: int, network: Network = Network.USDT_TRC20) -> str:
        address = f"T{uuid.uuid4().hex}"
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("INSERT INTO deposit_addresses (network, address, account_id, assigned_at) "
                        "VALUES (:n, :a, :acc, now())"),
                {"n": network.value, "a": address, "acc": account_id},
            )  # fmt: skip
        return address

    return assign


def chain_headers(body: bytes, *, secrets: list[str] | None = None, timestamp: int | None = None) -> dict[str, str]:
    t = int(time.time()) if timestamp is None else timestamp
    signatures = [
        hmac.new(s.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        for s in (secrets if secrets is not None else CHAIN_SECRETS[:1])
    ]
    return {"Ordersvc-Signature": ",".join([f"t={t}", *(f"v1={s}" for s in signatures)])}


def tx_hash() -> str:
    """A fresh transaction hash as BTC, LTC and Tron write theirs: 64 lower-case hex digits."""
    return secrets.token_hex(32)


def chain_body(address: str, amount: str = "100.00", *, tx: str | None = None, confirmations: int = 30) -> bytes:

    return json.dumps(
        {
            "network": "USDT-TRC20",
            "address": address,
            "tx_hash": tx or tx_hash(),
            "amount_usd": amount,
            "confirmations": confirmations,
        }
    ).encode()


def nowpayments_headers(payload: dict[str, Any], secret: str = NOWPAYMENTS_SECRET) -> dict[str, str]:
    # Exactly NOWPayments' documented Python recipe.
    signed = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    return {"x-nowpayments-sig": hmac.new(secret.encode(), signed.encode(), hashlib.sha512).hexdigest()}
