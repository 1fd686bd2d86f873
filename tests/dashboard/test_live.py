"""Live updates in a real browser: a worker's progress and a credit appear without a reload, from
the event stream (the 10- and 15-second polls are off while it is connected), the dashboard polls
again when the stream drops, and the Webhooks page manages endpoints (axe-checked)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.fulfilment import service as fulfilment
from ordersvc.ledger import service as ledger
from ordersvc.money import parse_usd
from tests.conftest import MakeCustomer
from tests.dashboard.conftest import CHROMIUM, watched_page
from tests.dashboard.test_console_journey import AXE, axe_violations
from tests.support import ServerProcess, confirm_recipient, unique_email

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it)"),
    pytest.mark.skipif(not AXE.is_file(), reason="no axe-core: run `npm ci` in web/ (.ci/run does)"),
]

# Well inside the polls' 10 seconds (orders) and 15 seconds (balance): only the stream is this fast.
LIVE_MS = 6000


@pytest.fixture
async def page(browser: Any, live_server: ServerProcess) -> AsyncIterator[Any]:
    async with watched_page(browser, live_server.base_url, viewport={"width": 1280, "height": 860}) as page:
        yield page


async def sign_in(page: Any, key: str) -> None:
    from playwright.async_api import expect

    await page.goto("/")
    await page.get_by_role("button", name="Sign in with an API key instead").click()
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in with the key").click()
    await expect(page.get_by_role("heading", name="Orders", level=1)).to_be_visible()
    await expect(page.locator("html[data-live=on]")).to_have_count(1)  # the stream is connected


async def test_a_workers_progress_and_a_credit_appear_without_reload(
    page: Any,
    live_server: ServerProcess,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_customer: MakeCustomer,
) -> None:
    from playwright.async_api import expect

    customer = await make_customer(balance="25")
    to = unique_email("live")
    await confirm_recipient(sessionmaker, customer, to)
    await sign_in(page, customer.api_key)
    await page.get_by_label("Target email").fill(to)
    await page.get_by_label("Quantity").fill("2000")
    await page.get_by_role("button", name="Place order").click()
    row = page.locator("tbody tr").first
    await expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "0")
    order_id = (await row.locator(".order-id").text_content()).strip()

    async with sessionmaker.begin() as session:
        _, token = await fulfilment.create_worker(session, name=f"live-{uuid.uuid4().hex[:8]}")
    worker = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        for _ in range(100):  # other tests' pending orders may come first
            claimed = (await client.post("/v1/fulfilment/claim", json={"limit": 50}, headers=worker)).json()["data"]
            if order_id in [c["id"] for c in claimed] or not claimed:
                break
        assert order_id in [c["id"] for c in claimed]
        await expect(row.locator(".badge")).to_have_text("in progress", timeout=LIVE_MS)
        reported = await client.post(
            f"/v1/fulfilment/orders/{order_id}/progress", json={"delivered": 500}, headers=worker
        )
        assert reported.status_code == 200
        await expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "25", timeout=LIVE_MS)
        await expect(row.locator(".progress-text")).to_have_text("25%")

    async with sessionmaker.begin() as session:  # an operator's credit: the header's balance moves
        await ledger.credit(session, email=customer.email, amount_mills=parse_usd("10"))
    await expect(page.locator("#balance")).to_have_text("33.00 USD", timeout=LIVE_MS)


async def test_the_dashboard_polls_while_the_stream_is_down(page: Any, make_customer: MakeCustomer) -> None:
    from playwright.async_api import expect

    customer = await make_customer(balance="5")
    await page.route("**/v1/events/stream", lambda route: route.abort())
    await page.goto("/")
    await page.get_by_role("button", name="Sign in with an API key instead").click()
    await page.get_by_label("API key").fill(customer.api_key)
    await page.get_by_role("button", name="Sign in with the key").click()
    await expect(page.get_by_role("heading", name="Orders", level=1)).to_be_visible()
    await expect(page.get_by_text("No orders yet. Place your first order above.")).to_be_visible()
    assert await page.evaluate("document.documentElement.dataset.live") != "on"
    # The orders table is read again by the 10-second poll.
    async with page.expect_request(lambda r: r.url.split("?")[0].endswith("/v1/orders"), timeout=15_000):
        pass


async def test_the_webhooks_page_adds_an_endpoint_shows_its_secret_once_and_sets_the_alert(
    page: Any, live_server: ServerProcess, make_customer: MakeCustomer
) -> None:
    from playwright.async_api import expect

    customer = await make_customer(balance="5")
    await sign_in(page, customer.api_key)
    await page.get_by_role("link", name="Webhooks").click()
    await expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    assert await axe_violations(page) == []
    await page.get_by_label("Endpoint URL (https)").fill("https://10.0.0.1/hook")
    await page.get_by_role("button", name="Add endpoint").click()
    await expect(page.get_by_text("must not point at a private address")).to_be_visible()
    await page.get_by_label("Endpoint URL (https)").fill("https://example.com/hooks/ordersvc")
    await page.get_by_label("order.status_changed").check()
    await page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#new-webhook-secret")
    await expect(secret).to_have_text(re.compile(r"^whsec_"))
    endpoint = page.locator(".webhook-endpoint")
    await expect(endpoint).to_have_count(1)
    await expect(endpoint).to_contain_text("order.status_changed")
    await endpoint.get_by_role("button", name="Deliveries").click()
    await expect(endpoint.get_by_text("No deliveries yet.")).to_be_visible()
    await endpoint.get_by_role("button", name="Disable").click()
    await expect(endpoint.locator(".badge")).to_have_text("disabled")
    assert await axe_violations(page) == []

    await page.get_by_label("Tell me when my balance goes below (USD; empty: never)").fill("2.50")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("balance.low is sent when your balance goes below 2.50 USD.")).to_be_visible()
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        alert = await client.get("/v1/balance/alert", headers={"X-API-Key": customer.api_key})
        listed = await client.get("/v1/webhook-endpoints", headers={"X-API-Key": customer.api_key})
    assert alert.json() == {"threshold": "2.50", "currency": "USD"}
    (shown,) = listed.json()["data"]
    assert (shown["url"], shown["event_types"], shown["enabled"]) == (
        "https://example.com/hooks/ordersvc",
        ["order.status_changed"],
        False,
    )
