"""Browser tests: Playwright (Python) driving Debian's Chromium, headless and kept off the
network, against a live `ordersvc serve` on the test database. Screenshots go to
$ORDERSVC_ARTIFACTS_DIR/screenshots (default: artifacts/screenshots in the checkout)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.coupons import service as coupons
from ordersvc.deposits import addresses
from ordersvc.deposits import service as deposits
from ordersvc.deposits.models import Network
from ordersvc.money import parse_usd
from tests.support import ServerProcess, serve

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ORDERSVC_CHROMIUM", "/usr/bin/chromium")
# Headless, and nothing that phones home: this machine's network is closed, and a test must not
# depend on (or wait for) Google's services.
CHROMIUM_ARGS = [
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
SCREENSHOTS = Path(os.environ.get("ORDERSVC_ARTIFACTS_DIR", REPO / "artifacts")) / "screenshots"


@pytest.fixture(scope="module")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**os.environ, "DATABASE_URL": database_url, "ORDERSVC_MAILER_IN_SERVE": "false"}
    with serve(tmp_path_factory.mktemp("dashboard"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
async def coupon(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    code = f"DASH{uuid.uuid4().hex[:8].upper()}"
    async with sessionmaker.begin() as session:
        await coupons.create_coupon(session, code=code, amount_mills=parse_usd("10"))
    return code


@pytest.fixture
async def stocked_address_pool(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A free address in every network's pool, so the deposits page can assign one."""
    async with sessionmaker.begin() as session:
        for network in Network:
            await addresses.import_addresses(session, network=network, addresses=[f"T{uuid.uuid4().hex}"])


@pytest.fixture
async def bonus_tier(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """A 5% tier from 100 USD for one test; the tiers in force before are put back after."""
    async with sessionmaker.begin() as session:
        saved = (await session.execute(sa.text("SELECT threshold_mills, basis_points FROM bonus_tiers"))).all()
        await session.execute(sa.text("DELETE FROM bonus_tiers"))
        await deposits.set_bonus_tier(session, threshold_mills=parse_usd("100"), basis_points=500)
    yield
    async with sessionmaker.begin() as session:
        await session.execute(sa.text("DELETE FROM bonus_tiers"))
        for threshold, basis_points in saved:
            await deposits.set_bonus_tier(session, threshold_mills=threshold, basis_points=basis_points)


class Console:
    """JavaScript errors and console errors (CSP violations among them) seen by a page."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Any) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        # A refused request (402, 409, 401) is logged by Chromium as a failed resource load:
        # that is the API answering, not the page failing.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)


@asynccontextmanager
async def watched_page(browser: Any, base_url: str, **options: Any) -> AsyncIterator[Any]:
    """A page in a context of its own; any JavaScript error or CSP violation fails the test."""
    context = await browser.new_context(base_url=base_url, **options)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    console = Console()
    console.watch(page)
    yield page
    await context.close()
    assert console.errors == []
