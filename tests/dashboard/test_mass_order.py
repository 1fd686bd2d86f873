"""The dashboard's Mass order page in a real browser (headless Chromium) against a live server:
pasted lines and a CSV file, a preview with each line's price and error, the total against the
balance, then each line's outcome as the API decided it, and the outcome as a CSV download."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import MakeCustomer
from tests.dashboard.conftest import CHROMIUM, watched_page
from tests.dashboard.test_browser import sign_in
from tests.legacy.helpers import snapshot
from tests.support import ServerProcess, unique_email

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason=f"no Chromium at {CHROMIUM}: install Debian's `chromium` package (.ci/run does) "
    "or set ORDERSVC_CHROMIUM to run the browser tests",
)


@pytest.fixture
async def page(browser: Any, live_server: ServerProcess) -> AsyncIterator[Any]:
    options = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US", "accept_downloads": True}
    async with watched_page(browser, live_server.base_url, **options) as page:
        yield page


async def cells(table: Any) -> list[list[str]]:
    rows = table.locator("tbody tr")
    return [[t.strip() for t in await rows.nth(i).locator("td").all_inner_texts()] for i in range(await rows.count())]


async def emails_ordered(sessionmaker: async_sessionmaker[AsyncSession], account_id: int) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.execute(
            sa.text("SELECT email FROM orders WHERE account_id = :a ORDER BY id"), {"a": account_id}
        )
        return [row[0] for row in rows]


class TestMassOrder:
    async def test_paste_preview_place_and_download(
        self,
        page: Any,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        screenshots: Path,
    ) -> None:
        from playwright.async_api import expect

        customer = await make_customer(balance="3")
        a, b, c, d = (unique_email(t) for t in "abcd")
        await sign_in(page, customer.api_key)
        await page.get_by_role("link", name="Mass order", exact=True).click()
        await expect(page.get_by_role("heading", name="Mass order", level=1)).to_be_visible()
        await page.get_by_label("Lines").fill(f"{a} 1000\n\n{b}|1500\nnot-an-address,700\n{c},100\n{d};1000\n")
        await page.get_by_role("button", name="Preview").click()

        preview = page.get_by_role("table", name="Preview of the mass order")
        await expect(preview.locator("tbody tr")).to_have_count(5)
        assert await cells(preview) == [
            ["1", a, "1000", "1.00 USD", "OK"],
            ["3", b, "1500", "1.50 USD", "OK"],
            ["4", "not-an-address", "700", "—", "Invalid email."],
            ["5", c, "100", "—", "Invalid quantity. Range is 500-50000."],
            ["6", d, "1000", "1.00 USD", "OK"],
        ]
        summary = page.locator("#mass-summary")
        await expect(summary).to_contain_text("3 orders, total 3.50 USD; 2 lines have an error and will not be sent.")
        await expect(summary).to_contain_text("Your balance (3.00 USD) does not cover it")
        assert await snapshot(sessionmaker, customer) == ("3.00", 1, 0)  # nothing placed by a preview
        await page.screenshot(path=screenshots / "mass-order-preview.png", full_page=True)

        await page.get_by_role("button", name="Place 3 orders").click()
        await expect(page.locator("#mass-result")).to_have_text("2 placed, 1 refused, 2.50 USD debited.")
        outcome = page.get_by_role("table", name="Outcome of the mass order")
        texts = await cells(outcome)
        assert [t[-1] for t in texts] == [
            "Placed (awaiting confirmation)",
            "Placed (awaiting confirmation)",
            "Not sent: Invalid email.",
            "Not sent: Invalid quantity. Range is 500-50000.",
            "Refused: Insufficient balance.",
        ]
        assert await emails_ordered(sessionmaker, customer.account_id) == [a, b]
        await expect(page.locator("#balance")).to_have_text("0.50 USD")
        await page.screenshot(path=screenshots / "mass-order-outcome.png", full_page=True)

        async with page.expect_download() as download_info:
            await page.get_by_role("button", name="Download results (CSV)").click()
        download = await download_info.value
        rows_csv = list(csv.DictReader(io.StringIO(Path(await download.path()).read_text(encoding="utf-8-sig"))))
        assert [(r["line"], r["email"], r["outcome"], r["problem"]) for r in rows_csv] == [
            ("1", a, "placed", ""),
            ("3", b, "placed", ""),
            ("4", "not-an-address", "not sent", "Invalid email."),
            ("5", c, "not sent", "Invalid quantity. Range is 500-50000."),
            ("6", d, "refused", "insufficient_balance"),
        ]
        placed_ids = [r["order_id"] for r in rows_csv if r["outcome"] == "placed"]
        assert [t[3] for t in texts if t[-1].startswith("Placed")] == placed_ids

    async def test_a_csv_file_with_a_header_and_more_lines_than_one_batch(
        self,
        page: Any,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path,
    ) -> None:
        from playwright.async_api import expect

        customer = await make_customer(balance="100")
        emails = [unique_email(f"csv{i}") for i in range(150)]
        upload = tmp_path / "orders.csv"
        upload.write_text("email,quantity\r\n" + "".join(f'"{e}",500\r\n' for e in emails), encoding="utf-8")
        await sign_in(page, customer.api_key)
        await page.goto("/#/mass-order")
        await page.get_by_label("Or a CSV file").set_input_files(str(upload))
        await expect(page.locator("#mass-summary")).to_contain_text("150 orders, total 75.00 USD.")
        await expect(page.locator("#mass-summary")).to_contain_text("Your balance (100.00 USD) covers it.")
        await page.get_by_role("button", name="Place 150 orders").click()
        await expect(page.locator("#mass-result")).to_have_text("150 placed, 0 refused, 75.00 USD debited.")
        assert await emails_ordered(sessionmaker, customer.account_id) == emails
        assert await snapshot(sessionmaker, customer) == ("25.00", 151, 150)

    async def test_a_lost_batch_placed_again_is_never_placed_twice(
        self,
        page: Any,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        """The second of two batches loses its connection: the page says so, and "Place again"
        (even after previewing the same lines again) replays the first batch and places the rest."""
        from playwright.async_api import expect

        customer = await make_customer(balance="100")
        emails = [unique_email(f"lost{i}") for i in range(130)]
        sent = 0

        async def lose_the_second(route: Any) -> None:
            nonlocal sent
            sent += 1
            if sent == 2:
                await route.abort("connectionreset")
            else:
                await route.continue_()

        await page.route("**/v1/orders/batch", lose_the_second)
        await sign_in(page, customer.api_key)
        await page.goto("/#/mass-order")
        await page.get_by_label("Lines").fill("".join(f"{e} 500\n" for e in emails))
        await page.get_by_role("button", name="Preview").click()
        await page.get_by_role("button", name="Place 130 orders").click()
        await expect(page.get_by_role("alert")).to_contain_text("Stopped:")
        assert len(await emails_ordered(sessionmaker, customer.account_id)) == 100
        await page.get_by_role("button", name="Preview").click()  # the same lines: the same keys
        await page.get_by_role("button", name="Place 130 orders").click()
        await expect(page.locator("#mass-result")).to_have_text("130 placed, 0 refused, 65.00 USD debited.")
        assert await emails_ordered(sessionmaker, customer.account_id) == emails
        assert await snapshot(sessionmaker, customer) == ("35.00", 131, 130)
