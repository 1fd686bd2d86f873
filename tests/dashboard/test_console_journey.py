"""The operator's console in a real browser: an operator made through the CLI sets a password from
the printed link, enrols the authenticator, finds a customer, credits 10.00 with a reason, sees the
audit entry and the new balance, cancels an order, assigns an unmatched deposit, exports a CSV
and reads it back. Every page is checked with axe-core (0 violations), by keyboard, and at phone
width."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import totp
from ordersvc.money import format_usd
from tests.conftest import MakeCustomer
from tests.dashboard.conftest import CHROMIUM, watched_page
from tests.support import ServerProcess, confirm_recipient, place_as, run_cli, unique_email

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "operators keep long passphrases"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it)"),
    pytest.mark.skipif(not AXE.is_file(), reason="no axe-core: run `npm ci` in web/ (.ci/run does)"),
    pytest.mark.usefixtures("fresh_throttle"),
]


async def axe_violations(page: Any) -> list[str]:
    """axe-core's violations of the page as it is now (WCAG 2.1 A and AA rules)."""
    # Evaluated through the debugger protocol: the page's own CSP (script-src 'self') stays on.
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    tags = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']"
    result = await page.evaluate(
        f"async () => (await axe.run(document, {{runOnly: {{type: 'tag', values: {tags}}}}})).violations"
        ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
    )
    return list(result)


def cents(amount: str) -> str:
    """An exact amount to the cent, rounded half up, as the console shows it (web/src/format.ts)."""
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def code_now(secret: str) -> str:
    return totp.hotp(secret, totp.step_at(time.time()))


async def test_operator_journey(
    browser: Any,
    live_server: ServerProcess,
    make_customer: MakeCustomer,
    sessionmaker: async_sessionmaker[AsyncSession],
    screenshots: Path,
) -> None:
    from playwright.async_api import expect

    customer = await make_customer("5.00")
    recipient = unique_email("console-rcpt")
    await confirm_recipient(sessionmaker, customer, recipient)
    placed = await place_as(sessionmaker, customer.account_id, email=recipient, quantity=2000)
    async with sessionmaker.begin() as session:
        deposit_id = (
            await session.execute(
                sa.text(
                    "INSERT INTO deposits (processor, external_id, network, address, amount_mills, status, payload)"
                    " VALUES ('chain', :x, 'USDT-TRC20', :a, 7000, 'unmatched', '{}') RETURNING id"
                ),
                {"x": uuid.uuid4().hex, "a": f"Tconsole{uuid.uuid4().hex[:20]}"},
            )
        ).scalar_one()

    email = unique_email("console-admin")
    created = run_cli("operators", "create", email, "--role", "admin", "--json")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["link"].split("/set-password/", 1)[1]

    async with watched_page(
        browser, live_server.base_url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    ) as page:
        await page.goto(f"/admin/#/set-password/{token}")
        await page.get_by_label("New password").fill(PASSWORD)
        assert await axe_violations(page) == []
        await page.get_by_role("button", name="Set password").click()
        await expect(page.get_by_text("Password set for")).to_be_visible()

        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        assert await axe_violations(page) == []
        await page.get_by_role("button", name="Sign in").click()
        secret = (await page.locator("#totp-secret").text_content() or "").strip()
        assert len(secret) >= 16
        assert await axe_violations(page) == []
        await page.get_by_label("Code from the app").fill(code_now(secret))
        await page.get_by_role("button", name="Confirm").click()
        await expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
        await expect(page.locator("#balances-held")).to_contain_text("USD")
        async with sessionmaker() as session:
            ledger_sum = (await session.execute(sa.text("SELECT sum(amount_mills) FROM payments"))).scalar_one()
        assert await page.locator("#balances-held").text_content() == f"{cents(format_usd(int(ledger_sum)))} USD"
        assert await axe_violations(page) == []
        await page.screenshot(path=str(screenshots / "console-overview.png"), full_page=True)

        # Find the customer and credit 10.00 with a reason.
        await page.get_by_role("link", name="Customers", exact=True).click()
        await page.get_by_label("Search customers").fill(customer.email)
        await page.get_by_role("button", name="Search").click()
        await page.get_by_role("link", name=customer.email).click()
        await expect(page.locator("#customer-balance")).to_have_text("3.00 USD")
        assert await axe_violations(page) == []
        await page.get_by_label("Amount (USD)").fill("10.00")
        reason = f"goodwill for ticket {uuid.uuid4().hex[:8]}"  # this run's own: the audit log keeps earlier runs'
        await page.get_by_label("Reason").fill(reason)
        await page.get_by_role("button", name="Apply").click()
        await expect(page.get_by_text("New balance 13.00 USD")).to_be_visible()
        await expect(page.locator("#customer-balance")).to_have_text("13.00 USD")

        # The audit entry.
        await page.get_by_role("link", name="Audit log", exact=True).click()
        await page.get_by_label("Object id").fill(str(customer.account_id))
        await page.get_by_label("Object type").fill("account")
        await page.get_by_role("button", name="Show").click()
        row = page.locator("tr", has_text=reason)
        await expect(row).to_contain_text("payment.credit")
        await expect(row).to_contain_text(email)
        await expect(page.locator("tbody tr")).to_have_count(1)  # the filter leaves this entry only
        assert await axe_violations(page) == []

        # Cancel the order: refunded.
        await page.get_by_role("link", name="Orders", exact=True).click()
        await page.get_by_label("Customer id").fill(str(customer.account_id))
        await page.get_by_role("button", name="Show").click()
        await page.get_by_role("button", name=f"Cancel order {placed.order.public_id}").click()
        await expect(page.get_by_text(f"Order {placed.order.public_id}: canceled, refunded 2.00 USD.")).to_be_visible()
        assert await axe_violations(page) == []

        # Export the orders and read the CSV back.
        async with page.expect_download() as download_info:
            await page.get_by_role("link", name="Export CSV").click()
        download = await download_info.value
        rows = list(csv.DictReader(io.StringIO(Path(await download.path()).read_text(encoding="utf-8"))))
        assert [(r["id"], r["status"], r["price"]) for r in rows] == [(placed.order.public_id, "canceled", "2.00")]

        # Assign the unmatched deposit.
        await page.get_by_role("link", name="Deposits", exact=True).click()
        await page.get_by_label(f"Customer email for deposit {deposit_id}").fill(customer.email)
        assert await axe_violations(page) == []
        await page.get_by_role("form", name=f"Assign deposit {deposit_id}").get_by_role("button", name="Assign").click()
        await expect(
            page.get_by_text(f"Deposit {deposit_id} credited to customer {customer.account_id}.")
        ).to_be_visible()

        await page.get_by_role("link", name="Customers", exact=True).click()
        await page.get_by_label("Search customers").fill(customer.email)
        await page.keyboard.press("Enter")
        await page.get_by_role("link", name=customer.email).click()
        await expect(page.locator("#customer-balance")).to_have_text("22.00 USD")  # 3 + 10 + 2 refund + 7 deposit

        # Recipients: the address's consent, suppressed by the operator, then taken off the list.
        await page.get_by_role("link", name="Recipients", exact=True).click()
        await page.get_by_label("Recipient address").fill(recipient)
        await page.keyboard.press("Enter")
        await expect(page.locator("#recipient-opt-out")).to_have_text("Not opted out.")
        await expect(page.locator("#recipient-state").get_by_role("listitem")).to_have_text(
            f"Customer {customer.account_id} confirmed"
        )
        assert await axe_violations(page) == []
        await page.get_by_role("button", name="Suppress this address").click()
        await expect(page.locator("#recipient-opt-out")).to_have_text("Opted out (by an operator).")
        await page.get_by_role("link", name="Catalogue", exact=True).click()
        remove = page.get_by_role("button", name=f"Remove {recipient} from the list")
        await remove.click()
        await expect(remove).to_have_count(0)
        assert await axe_violations(page) == []

        # Keyboard alone: the skip link, then Tab reaches the navigation.
        await page.goto("/admin/#/overview")
        await expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
        for _ in range(6):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.textContent") == "Customers":
                break
        assert await page.evaluate("document.activeElement.textContent") == "Customers"
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Customers", level=1)).to_be_visible()

        # Phone width: nothing wider than the screen.
        await page.set_viewport_size({"width": 375, "height": 800})
        pages = ["overview", "customers", f"customers/{customer.account_id}", "orders", "deposits", "recipients"]
        for route in [*pages, "audit", "catalogue", "operators"]:  # every page of the console
            await page.goto(f"/admin/#/{route}")
            await page.wait_for_timeout(300)
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (route, overflow)
            assert await axe_violations(page) == [], route
        await page.screenshot(path=str(screenshots / "console-phone.png"), full_page=True)


async def test_the_console_asks_an_operator_to_sign_in(browser: Any, live_server: ServerProcess) -> None:
    async with watched_page(browser, live_server.base_url) as page:
        await page.goto("/admin/")
        from playwright.async_api import expect

        await expect(page.get_by_role("heading", name="Operator sign-in")).to_be_visible()
        assert await axe_violations(page) == []
