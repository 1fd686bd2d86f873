"""The customer's journey through the dashboard in a real browser (headless Chromium), against
a live `ordersvc serve` on the test database: every number on screen is checked against the API."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.deposits import service as deposits
from ordersvc.fulfilment import service as fulfilment
from ordersvc.money import format_usd, parse_usd
from tests.conftest import MakeCustomer
from tests.consent.test_consent import messages_to, recipient
from tests.dashboard.conftest import CHROMIUM, watched_page
from tests.dashboard.seed import SEED, code_lines, seed_examples
from tests.legacy.helpers import snapshot
from tests.support import Customer, ServerProcess, place_as

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason=f"no Chromium at {CHROMIUM}: install Debian's `chromium` package (.ci/run does) "
    "or set ORDERSVC_CHROMIUM to run the browser tests",
)

TIME_ZONE = "America/New_York"  # not UTC, so that local times and UTC differ on screen


@pytest.fixture
async def page(browser: Any, live_server: ServerProcess) -> AsyncIterator[Any]:
    options = {"viewport": {"width": 1280, "height": 860}, "locale": "en-US", "timezone_id": TIME_ZONE}
    async with watched_page(browser, live_server.base_url, **options) as page:
        yield page


async def sign_in(page: Any, key: str) -> None:
    from playwright.async_api import expect

    await page.goto("/")
    await page.get_by_role("button", name="Sign in with an API key instead").click()
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in with the key").click()
    await expect(page.get_by_role("heading", name="Orders", level=1)).to_be_visible()


async def api_get(server: ServerProcess, customer: Customer, path: str) -> Any:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.get(path, headers={"Authorization": f"Bearer {customer.api_key}"})
        response.raise_for_status()
        return response.json()


async def api_list_orders(sessionmaker: async_sessionmaker[AsyncSession], customer: Customer) -> list[str]:
    """The customer's order ids, newest first, read from the database."""
    async with sessionmaker() as session:
        rows = await session.execute(
            sa.text("SELECT public_id FROM orders WHERE account_id = :a ORDER BY id DESC"), {"a": customer.account_id}
        )
        return [row[0] for row in rows]


async def confirm_and_start(
    server: ServerProcess, sessionmaker: async_sessionmaker[AsyncSession], to: str, order_id: str, delivered: int
) -> None:
    """The recipient confirms through the link in their mail; a worker claims the order and reports."""
    (message,) = await messages_to(sessionmaker, to)
    confirm = re.search(r"/consent/confirm/[A-Za-z0-9_.-]+", message.body_text)
    assert confirm is not None
    async with sessionmaker.begin() as session:
        _, token = await fulfilment.create_worker(session, name=f"dash-{uuid.uuid4().hex[:8]}")
    worker = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        assert (await client.post(confirm.group(0))).status_code == 200
        for _ in range(100):  # other tests' pending orders may come first
            claimed = (await client.post("/v1/fulfilment/claim", json={"limit": 50}, headers=worker)).json()["data"]
            if order_id in [c["id"] for c in claimed] or not claimed:
                break
        assert order_id in [c["id"] for c in claimed]
        progress = await client.post(
            f"/v1/fulfilment/orders/{order_id}/progress", json={"delivered": delivered}, headers=worker
        )
        assert progress.status_code == 200, progress.text


class TestCustomerJourney:
    async def test_sign_in_order_refusal_cancel_coupon_deposits_and_api_page(
        self,
        page: Any,
        live_server: ServerProcess,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        coupon: str,
        stocked_address_pool: None,
        bonus_tier: None,
        screenshots: Path,
    ) -> None:
        from playwright.async_api import expect

        customer = await make_customer(balance="25")

        # Sign-in: a wrong key is refused in place; the right one opens the orders page.
        await page.goto("/")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await page.screenshot(path=screenshots / "01-sign-in.png")
        await page.get_by_role("button", name="Sign in with an API key instead").click()
        await page.get_by_label("API key").fill("osk_not-a-real-key")
        await page.get_by_role("button", name="Sign in with the key").click()
        await expect(page.get_by_role("alert")).to_have_text("This API key is not valid. Check it and try again.")
        await sign_in(page, customer.api_key)
        await expect(page.locator("#balance")).to_have_text("25.00 USD")
        await expect(page.locator(".account-email")).to_have_text(customer.email)
        assert customer.api_key not in page.url
        assert await page.evaluate("sessionStorage.getItem('ordersvc.apiKey')") == customer.api_key
        assert await page.evaluate("localStorage.length") == 0
        assert await page.evaluate("document.cookie") == ""

        # Live price, and the API's own validation before anything is sent.
        quantity, email = page.get_by_label("Quantity"), page.get_by_label("Target email")
        await quantity.fill("1234")
        # Shown to the cent (1,234 costs 1.234 USD: the ledger keeps mills), the exact price on hover.
        await expect(page.locator("#order-price")).to_have_text("1.23 USD")
        await expect(page.locator("#order-price")).to_have_attribute("title", "Exactly 1.234 USD")
        await quantity.fill("10000")
        await expect(page.locator("#order-price")).to_have_text("10.00 USD")
        await email.fill("not an email")
        await quantity.fill("499")
        await expect(page.locator("#order-price")).to_have_text("—")
        await page.get_by_role("button", name="Place order").click()
        await expect(page.locator("#order-email-error")).to_have_text("Invalid email.")
        await expect(page.locator("#order-quantity-error")).to_have_text("Invalid quantity. Range is 500-50000.")
        assert await snapshot(sessionmaker, customer) == ("25.00", 1, 0)

        # An order is placed, debited, and shown as waiting for its recipient.
        first = recipient()
        await email.fill(first)
        await quantity.fill("10000")
        await page.get_by_role("button", name="Place order").click()
        await expect(page.locator("#balance")).to_have_text("15.00 USD")
        (placed,) = (await api_get(live_server, customer, "/v1/orders"))["data"]
        row = page.locator("tbody tr", has_text=first)
        await expect(row.locator("td")).to_have_text(
            [
                f"{first}{placed['id']}",
                "10,000",
                "10.00 USD",
                "awaiting confirmation",
                "0%",
                re.compile(r"\w"),
                "Cancel",
            ]
        )
        await expect(page.get_by_role("note")).to_contain_text("1 order is awaiting confirmation.")
        await expect(page.get_by_role("note")).to_contain_text("Work starts when they confirm")

        # Times are in the browser's zone, the exact UTC time on hover.
        created = datetime.fromisoformat(placed["created"].replace("Z", "+00:00"))
        cell = row.locator("time")
        assert await cell.get_attribute("title") == created.strftime("%Y-%m-%d %H:%M:%S UTC")
        local = created.astimezone(ZoneInfo(TIME_ZONE))
        await expect(cell).to_contain_text(f"{local.hour % 12 or 12}:{local:%M} {local:%p}")

        # A refused order: the API's error is shown in place, and nothing changed.
        await email.fill(recipient())
        await quantity.fill("20000")
        await expect(page.locator("#order-price")).to_have_text("20.00 USD")
        await page.get_by_role("button", name="Place order").click()
        refusal = page.locator(".order-form [role=alert]")
        await expect(refusal).to_have_text(
            "Insufficient balance. Add funds with a deposit or a coupon, then place the order again."
        )
        # The way forward is a link: where deposits and coupons are.
        await expect(refusal.get_by_role("link", name="deposit")).to_have_attribute("href", "#/deposits")
        await expect(refusal.get_by_role("link", name="coupon")).to_have_attribute("href", "#/payments")
        assert await snapshot(sessionmaker, customer) == ("15.00", 2, 1)

        # The recipient confirms, a worker starts: status and progress follow.
        await confirm_and_start(live_server, sessionmaker, first, placed["id"], delivered=3700)
        await page.reload()
        await expect(row.locator("td").nth(3)).to_have_text("in progress")
        await expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "37")
        await expect(row.locator(".progress-text")).to_have_text("37%")

        # A second order, canceled before its recipient answered: refunded in full at once.
        second = recipient()
        await email.fill(second)
        await quantity.fill("2500")
        await page.get_by_role("button", name="Place order").click()
        await expect(page.locator("#balance")).to_have_text("12.50 USD")
        second_row = page.locator("tbody tr", has_text=second)
        await second_row.get_by_role("button", name=re.compile(r"^Cancel order [0-9A-F]{8}$")).click()
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_contain_text("2.50 USD is refunded now.")
        await dialog.get_by_role("button", name="Cancel order").click()
        await expect(page.locator("#balance")).to_have_text("15.00 USD")
        await expect(second_row.locator("td").nth(3)).to_have_text("canceled")
        await expect(second_row.get_by_role("button")).to_have_count(0)
        await expect(page.get_by_role("status").filter(has_text="canceled")).to_contain_text("2.50 USD refunded")
        await page.screenshot(path=screenshots / "02-orders.png", full_page=True)

        # Deposits: an address (from the pool only when asked for) with its QR code, the bonus
        # tiers, and a credited deposit.
        await page.get_by_role("link", name="Deposits").click()
        await expect(page.get_by_role("tab", name="USDT-TRC20")).to_have_attribute("aria-selected", "true")
        await expect(page.locator(".tier-list li")).to_have_text(["+5%on deposits of 100.00 USD or more"])
        await page.get_by_role("tab", name="BTC").click()
        await expect(page.get_by_role("button", name="Get my BTC address")).to_be_visible()
        assert (await api_get(live_server, customer, "/v1/deposit-addresses"))["data"] == []
        await page.get_by_role("tab", name="USDT-TRC20").click()
        await page.get_by_role("button", name="Get my USDT-TRC20 address").click()
        await expect(page.locator("#deposit-address")).to_be_visible()
        (assigned,) = (await api_get(live_server, customer, "/v1/deposit-addresses"))["data"]
        assert assigned["network"] == "USDT-TRC20"
        await expect(page.locator("#deposit-address")).to_have_text(assigned["address"])
        await expect(page.get_by_role("img", name="QR code of your USDT-TRC20 deposit address")).to_be_visible()
        tx_hash = uuid.uuid4().hex * 2  # 64 hex digits, as a Tron transaction id
        async with sessionmaker.begin() as session:
            outcome = await deposits.record_deposit(
                session,
                deposits.DepositEvent(
                    processor="chain",
                    external_id=f"USDT-TRC20:{tx_hash}:{assigned['address']}",
                    amount_mills=parse_usd("150"),
                    payload={},
                    network="USDT-TRC20",
                    address=assigned["address"],
                    tx_hash=tx_hash,
                ),
            )
        assert outcome.status == "credited"
        await page.reload()  # opens on the network that has an address
        await expect(page.get_by_role("tab", name="USDT-TRC20")).to_have_attribute("aria-selected", "true")
        deposit_row = page.locator("tbody tr", has_text=tx_hash)
        await expect(deposit_row.locator("td")).to_have_text(
            ["USDT-TRC20", "150.00 USD + 7.50 USD bonus", tx_hash, re.compile(r"\w")]
        )
        await expect(page.locator("#balance")).to_have_text("172.50 USD")
        await expect(page.locator("#deposit-address")).to_have_text(assigned["address"])
        await page.screenshot(path=screenshots / "03-deposits.png", full_page=True)

        # Payments: a coupon is redeemed once; every payment says what it was.
        await page.get_by_role("link", name="Payments").click()
        await page.get_by_label("Coupon code").fill(coupon.lower())
        await page.get_by_role("button", name="Redeem").click()
        await expect(page.locator(".coupon-form [role=status]")).to_have_text(
            f"Coupon {coupon.lower()} redeemed: 10.00 USD added to your balance."
        )
        await expect(page.locator("#balance")).to_have_text("182.50 USD")
        await page.get_by_label("Coupon code").fill(coupon)
        await page.get_by_role("button", name="Redeem").click()
        await expect(page.locator(".coupon-form [role=alert]")).to_have_text("You have already redeemed this coupon.")
        ledger = (await api_get(live_server, customer, "/v1/payments"))["data"]
        refunded = next(p["order_id"] for p in ledger if p["kind"] == "refund")
        redeemed = next(p["coupon"] for p in ledger if p["kind"] == "coupon")
        assert redeemed.lower() == coupon.lower()
        await expect(page.locator("tbody tr")).to_have_count(len(ledger))
        await expect(page.locator("tbody tr td:nth-child(2)")).to_have_text(
            [
                f"Coupon {redeemed}",
                "Bonus on a USDT-TRC20 deposit",
                "Deposit on USDT-TRC20",
                f"Refund of order {refunded}",
                f"Order {refunded} to {second}",
                f"Order {placed['id']} to {first}",
                "Top-up",
            ]
        )
        await expect(page.locator("tbody tr td:nth-child(1)")).to_have_text(
            ["+10.00 USD", "+7.50 USD", "+150.00 USD", "+2.50 USD", "-2.50 USD", "-10.00 USD", "+25.00 USD"]
        )
        await page.screenshot(path=screenshots / "04-payments.png", full_page=True)
        assert await snapshot(sessionmaker, customer) == ("182.50", 7, 2)

        # API: the endpoint URL with the key, the seed's examples filled in, a link to /docs.
        await page.get_by_role("link", name="API", exact=True).click()
        endpoint = f"{live_server.base_url}/api?key={customer.api_key}"
        await expect(page.locator("#endpoint-url")).to_have_text(endpoint)
        await expect(page.get_by_role("link", name="Interactive reference")).to_have_attribute("href", "docs")
        # REST first, for new integrations: the key in a header, never in a URL.
        rest = page.get_by_role("tablist", name="REST examples")
        assert await rest.get_by_role("tab").all_inner_texts() == ["curl", "Python SDK", "TypeScript"]
        for tab in ("curl", "Python SDK", "TypeScript"):
            await rest.get_by_role("tab", name=tab, exact=True).click()
            code = await page.locator("#rest-example-code").inner_text()
            assert customer.api_key in code, tab
            assert live_server.base_url in code, tab
            assert "?key=" not in code, tab
        legacy = page.get_by_role("tablist", name="Legacy examples")
        for tab in ("PHP", "PHP with curl", "Python", "curl"):
            await legacy.get_by_role("tab", name=tab, exact=True).click()
            code = await page.locator("#example-code").inner_text()
            assert customer.api_key in code
            assert endpoint in code
        await legacy.get_by_role("tab", name="PHP", exact=True).click()
        await page.screenshot(path=screenshots / "05-api.png", full_page=True)

        # The endpoint as shown works for the seed's clients: the Python example's balance call.
        async with httpx.AsyncClient() as client:
            balance = await client.post(endpoint, json={"action": "balance"})
        assert balance.text == '{"balance": 182.50}'

        # Sign-out forgets the key.
        await page.get_by_role("button", name="Sign out", exact=True).click()
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert await page.evaluate("sessionStorage.getItem('ordersvc.apiKey')") is None

    @pytest.mark.skipif(not SEED.is_file(), reason=f"the seed's reference is not at {SEED}")
    async def test_api_page_shows_the_seed_examples_with_key_and_endpoint(
        self, page: Any, live_server: ServerProcess, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer()
        await sign_in(page, customer.api_key)
        await page.goto("/#/api")
        endpoint = f"{live_server.base_url}/api?key={customer.api_key}"
        legacy = page.get_by_role("tablist", name="Legacy examples")
        for tab, expected in seed_examples(customer.api_key, endpoint).items():
            await legacy.get_by_role("tab", name=tab, exact=True).click()
            assert code_lines(await page.locator("#example-code").inner_text()) == expected, tab


class TestUsability:
    async def test_keyboard_alone_signs_in_orders_cancels_and_moves_between_pages(
        self, page: Any, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        from playwright.async_api import expect

        customer = await make_customer(balance="5")

        async def tab_to(name: str, limit: int = 40) -> None:
            """Press Tab until the focused element's accessible text is `name`."""
            for _ in range(limit):
                await page.keyboard.press("Tab")
                focused = await page.evaluate(
                    """() => {
                        const e = document.activeElement;
                        const label = e.labels && e.labels.length ? e.labels[0].textContent : null;
                        return (e.getAttribute("aria-label") || label || e.textContent || "").trim();
                    }"""
                )
                if focused == name:
                    return
            raise AssertionError(f"Tab never reached {name!r}")

        await page.goto("/")
        await expect(page.get_by_label("Email")).to_be_focused()  # the password sign-in comes first
        await tab_to("Sign in with an API key instead")
        await page.keyboard.press("Enter")
        await page.keyboard.type(customer.api_key)  # the key field has the focus now
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Orders", level=1)).to_be_visible()

        # The skip link is the first stop from the top of the page; it moves to the content and
        # keeps the page.
        await page.reload()
        await expect(page.locator("#balance")).to_have_text("5.00 USD")
        await tab_to("Skip to content", limit=1)
        await page.keyboard.press("Enter")
        await expect(page.locator("#main")).to_be_focused()
        assert page.url.endswith("#/orders")

        # An order, typed and sent from the keyboard.
        await tab_to("Target email")
        await page.keyboard.type(recipient())
        await page.keyboard.press("Tab")
        await page.keyboard.press("Control+A")
        await page.keyboard.type("500")
        await page.keyboard.press("Enter")
        await expect(page.locator("#balance")).to_have_text("4.50 USD")
        (placed,) = await api_list_orders(sessionmaker, customer)

        # Cancel: Escape keeps the order, Enter on the dialog's button cancels it.
        cancel = f"Cancel order {placed}"
        await tab_to(cancel)
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("dialog")).to_be_visible()
        await expect(page.get_by_role("button", name="Keep it")).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(page.get_by_role("dialog")).to_be_hidden()
        await expect(page.get_by_role("button", name=cancel)).to_be_focused()
        await page.keyboard.press("Enter")
        await page.keyboard.press("Tab")  # from "Keep it" to "Cancel order"
        await page.keyboard.press("Enter")
        await expect(page.locator("#balance")).to_have_text("5.00 USD")
        await expect(page.locator(".table-scroll")).to_be_focused()  # not lost to the page top

        # Navigation links and tab lists (arrow keys) work from the keyboard.
        await page.reload()
        await tab_to("API")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="API", level=1)).to_be_visible()
        await tab_to("PHP")
        await page.keyboard.press("ArrowRight")
        await expect(page.get_by_role("tab", name="PHP with curl")).to_be_focused()
        await expect(page.get_by_role("tab", name="PHP with curl")).to_have_attribute("aria-selected", "true")
        await expect(page.locator("#example-code")).to_contain_text("curl_init($endpoint)")

    async def test_phone_width_fits_the_screen(
        self, browser: Any, live_server: ServerProcess, make_customer: MakeCustomer, screenshots: Path
    ) -> None:
        from playwright.async_api import expect

        customer = await make_customer(balance="25")
        phone_size = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
        async with watched_page(browser, live_server.base_url, **phone_size) as phone:
            await sign_in(phone, customer.api_key)
            await phone.get_by_label("Target email").fill(recipient())
            await phone.get_by_label("Quantity").fill("1500")
            await phone.get_by_role("button", name="Place order").click()
            await expect(phone.locator("#balance")).to_have_text("23.50 USD")
            await expect(phone.locator("tbody tr")).to_have_count(1)
            for route in ("orders", "deposits", "payments", "webhooks", "api", "settings"):
                await phone.goto(f"/#/{route}")
                await expect(phone.locator(".page")).to_be_visible()
                overflow = await phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, f"{route} is {overflow}px wider than the phone"
            await phone.goto("/#/orders")
            await expect(phone.locator("tbody tr")).to_have_count(1)
            await phone.screenshot(path=screenshots / "06-orders-phone.png", full_page=True)

    async def test_nothing_moves_while_a_list_loads(self, page: Any, make_customer: MakeCustomer) -> None:
        from playwright.async_api import expect

        customer = await make_customer(balance="25")
        await sign_in(page, customer.api_key)
        release: list[Any] = []

        async def hold(route: Any) -> None:
            release.append(route)

        await page.route("**/v1/orders?*", hold)
        await page.goto("/#/payments")
        await page.goto("/#/orders")
        await expect(page.locator("tr.placeholder").first).to_be_visible()
        watched = ["h1", ".order-form", "#orders-title", ".table-scroll"]
        before = [await page.locator(selector).bounding_box() for selector in watched]
        for route in release:
            await route.continue_()
        await page.unroute("**/v1/orders?*")
        await expect(page.get_by_text("No orders yet.")).to_be_visible()
        after = [await page.locator(selector).bounding_box() for selector in watched]
        assert after == before

    async def test_a_revoked_key_signs_the_browser_out(
        self, page: Any, live_server: ServerProcess, make_customer: MakeCustomer
    ) -> None:
        from playwright.async_api import expect

        customer = await make_customer()
        await sign_in(page, customer.api_key)
        prefix = customer.api_key[:12]
        async with httpx.AsyncClient(base_url=live_server.base_url) as client:
            revoked = await client.delete(
                f"/v1/api-keys/{prefix}", headers={"Authorization": f"Bearer {customer.api_key}"}
            )
        assert revoked.status_code == 204
        await page.get_by_role("link", name="Payments").click()
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await expect(page.get_by_role("status")).to_have_text(
            "Your API key is no longer valid. Sign in with a current key."
        )
        assert await page.evaluate("sessionStorage.getItem('ordersvc.apiKey')") is None


class TestPaging:
    async def test_older_and_newer_walk_the_payments_like_the_api(
        self, page: Any, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        from playwright.async_api import expect

        from ordersvc.ledger import service as ledger

        customer = await make_customer()
        async with sessionmaker.begin() as session:
            for n in range(1, 46):  # 45 top-ups of 0.01 .. 0.45 USD: each row is recognisable
                await ledger.credit(session, email=customer.email, amount_mills=10 * n)
        amounts = page.locator("tbody tr td:nth-child(1)")
        newer, older = page.get_by_role("button", name="← Newer"), page.get_by_role("button", name="Older →")

        def expected(first: int, last: int) -> list[str]:
            return [f"+{format_usd(10 * n)} USD" for n in range(first, last - 1, -1)]

        await sign_in(page, customer.api_key)
        await page.get_by_role("link", name="Payments").click()
        await expect(amounts).to_have_text(expected(45, 26))
        await expect(newer).to_be_disabled()
        await older.click()
        await expect(amounts).to_have_text(expected(25, 6))
        await older.click()
        await expect(amounts).to_have_text(expected(5, 1))
        await expect(older).to_be_disabled()
        await newer.click()
        await expect(amounts).to_have_text(expected(25, 6))
        await expect(older).to_be_enabled()
        await newer.click()
        await expect(amounts).to_have_text(expected(45, 26))
        await expect(newer).to_be_disabled()


class TestApiReference:
    async def test_swagger_ui_renders_the_document_from_this_origin_only(
        self, page: Any, live_server: ServerProcess
    ) -> None:
        """`/docs` loads nothing from another origin (it works offline, and no CDN can change
        it), and renders every operation under its strict CSP (a violation fails the page)."""
        from playwright.async_api import expect

        origins: set[str] = set()
        page.on("request", lambda request: origins.add(re.sub(r"^(\w+://[^/]+).*$", r"\1", request.url)))
        await page.goto("/docs")
        await expect(page.get_by_text("Place an order").first).to_be_visible()
        await expect(page.locator(".opblock")).to_have_count(len(operations_of(live_server)))
        assert origins == {live_server.base_url}


def operations_of(server: ServerProcess) -> list[str]:
    document = httpx.get(f"{server.base_url}/openapi.json", timeout=10).json()
    return [op for item in document["paths"].values() for op in item]


class TestMoney:
    async def test_amounts_show_cents_with_the_exact_amount_on_hover(
        self, page: Any, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """The ledger keeps tenths of a cent; people read cents (rounded half up), and the exact
        amount is the element's title."""
        from playwright.async_api import expect

        from ordersvc.ledger import service as ledger

        customer = await make_customer(balance="165.175")
        async with sessionmaker.begin() as session:
            await ledger.credit(session, email=customer.email, amount_mills=10_000)
        await sign_in(page, customer.api_key)
        await expect(page.locator("#balance")).to_have_text("175.18 USD")
        await expect(page.locator("#balance")).to_have_attribute("title", "Exactly 175.175 USD")
        await page.goto("/#/payments")
        amounts = page.locator("tbody tr td:nth-child(1) .money")
        await expect(amounts).to_have_text(["+10.00 USD", "+165.18 USD"])
        assert await amounts.nth(0).get_attribute("title") in (None, "")
        await expect(amounts.nth(1)).to_have_attribute("title", "Exactly 165.175 USD")


class TestEmptyStates:
    async def test_a_new_account_with_no_balance_is_told_to_add_funds_first(
        self, page: Any, make_customer: MakeCustomer
    ) -> None:
        from playwright.async_api import expect

        customer = await make_customer()
        await sign_in(page, customer.api_key)
        await expect(page.locator("#balance")).to_have_text("0.00 USD")
        await page.reload()  # the table speaks of the balance once it is known
        note = page.locator("td.table-note")
        await expect(note).to_contain_text("add funds first")
        await note.get_by_role("link", name="deposit").click()
        await expect(page).to_have_url(re.compile(r"#/deposits$"))


class TestAccountWithoutPassword:
    async def test_settings_offer_a_password_link_before_two_factor(
        self, page: Any, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """An operator-made account (no password) is not asked for a current password it does not
        have: Settings offers the emailed link, and two-factor waits for a password."""
        from playwright.async_api import expect

        customer = await make_customer()
        await sign_in(page, customer.api_key)
        await page.goto("/#/settings")
        await expect(page.locator("#no-password")).to_contain_text("no password yet")
        await expect(page.locator("#totp-state")).to_contain_text("Set a password first")
        await expect(page.get_by_label("Current password")).to_have_count(0)
        await page.get_by_role("button", name="Email me a link to set a password").click()
        await expect(page.get_by_role("status").filter(has_text="on its way")).to_be_visible()
        (message,) = await messages_to(sessionmaker, customer.email)
        assert "/reset-password" in (message.body_text or "") or "password" in (message.subject or "").lower()


class TestPhone:
    @pytest.mark.parametrize("width", [360, 390])
    async def test_the_menu_reaches_every_page_and_orders_are_compact_and_paged(
        self,
        browser: Any,
        live_server: ServerProcess,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        screenshots: Path,
        width: int,
    ) -> None:
        from playwright.async_api import expect

        customer = await make_customer(balance="50")
        for _ in range(15):
            await place_as(sessionmaker, customer.account_id, email=recipient(), quantity=500)
        phone_size = {"viewport": {"width": width, "height": 780}, "is_mobile": True, "has_touch": True}
        async with watched_page(browser, live_server.base_url, **phone_size) as phone:
            await sign_in(phone, customer.api_key)
            menu = phone.get_by_role("button", name="Menu")
            await expect(menu).to_be_visible()
            await expect(phone.get_by_role("link", name="Settings")).to_be_hidden()
            await menu.click()
            await expect(menu).to_have_attribute("aria-expanded", "true")
            for name in ("Orders", "Deposits", "Payments", "API", "Settings"):
                box = await phone.get_by_role("link", name=name, exact=True).bounding_box()
                assert box is not None, name
                assert 0 <= box["x"] <= box["x"] + box["width"] <= width, name
            await phone.screenshot(path=screenshots / f"07-menu-phone-{width}.png")
            await phone.get_by_role("link", name="Settings", exact=True).click()
            await expect(phone.get_by_role("heading", name="Settings", level=1)).to_be_visible()
            await expect(menu).to_have_attribute("aria-expanded", "false")

            await phone.goto("/#/orders")
            await expect(phone.locator("tbody tr")).to_have_count(10)  # a phone's page
            await expect(phone.get_by_role("button", name="Older →")).to_be_enabled()
            await phone.screenshot(path=screenshots / f"08-orders-phone-{width}.png", full_page=True)
            # Each order is a compact card (a 15-order page was 4,000 px of one-field rows).
            rows = await phone.locator("tbody tr").evaluate_all("rows => rows.map(r => r.offsetHeight)")
            assert max(rows) <= 190, rows
            height = await phone.evaluate("document.documentElement.scrollHeight")
            assert height < 2800, f"{height}px for a page of 10 orders"
