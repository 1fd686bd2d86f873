"""Self-service in a real browser: sign up, follow the verification link that arrived over SMTP,
sign in with the password, turn on two-factor sign-in, create an API key and use it against the
legacy endpoint, then sign out. The server runs its own mailer against a loopback SMTP server."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordersvc.accounts import totp
from tests.dashboard.conftest import CHROMIUM, watched_page
from tests.support import Inbox, ServerProcess, loopback_smtp, serve, text_of, unique_email

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason=f"no Chromium at {CHROMIUM}: install Debian's `chromium` package (.ci/run does) "
    "or set ORDERSVC_CHROMIUM to run the browser tests",
)

PASSWORD = "a long and quiet passphrase"


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[str, Inbox]]:
    with loopback_smtp() as server:
        yield server


@pytest.fixture(scope="module")
def mailing_server(
    database_url: str, inbox: tuple[str, Inbox], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """`ordersvc serve` with its mailer on, sending to the loopback SMTP server."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SMTP_URL": inbox[0],
        "ORDERSVC_MAILER_IN_SERVE": "true",
        "ORDERSVC_MAILER_INTERVAL_SECONDS": "0.2",
    }
    with serve(tmp_path_factory.mktemp("accounts-journey"), env=env) as server:
        yield server


@pytest.fixture
async def page(browser: Any, mailing_server: ServerProcess) -> AsyncIterator[Any]:
    async with watched_page(browser, mailing_server.base_url, viewport={"width": 1280, "height": 860}) as page:
        yield page


async def mail_to(inbox: Inbox, email: str, route: str, seen: int = 0) -> str:
    """The token of the newest link to `#/<route>/` mailed to `email` (after `seen` such mails)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        mails = [m for m in inbox.messages if m["To"] == email]
        if len(mails) > seen:
            match = re.search(rf"#/{route}/([A-Za-z0-9_-]+)", text_of(mails[-1]))
            assert match, text_of(mails[-1])
            return match.group(1)
        await asyncio.sleep(0.2)
    raise AssertionError(f"no mail to {email} arrived")


@pytest.mark.usefixtures("fresh_throttle")
class TestSelfServiceJourney:
    async def test_sign_up_verify_sign_in_totp_key_and_legacy_call(
        self, page: Any, mailing_server: ServerProcess, inbox: tuple[str, Inbox], screenshots: Path
    ) -> None:
        from playwright.async_api import expect

        email = unique_email("journey")
        await page.goto("/")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await page.get_by_role("link", name="Create an account").click()

        # Sign-up takes the address only: the password is chosen from the emailed link.
        await page.get_by_label("Email").fill(email)
        await expect(page.get_by_label("Password")).to_have_count(0)
        await page.get_by_role("button", name="Create account").click()
        await expect(page.get_by_role("status")).to_contain_text("a message with a link is on its way")
        await page.screenshot(path=screenshots / "20-sign-up.png")

        # The link, as it arrived over SMTP: it asks for the password (a weak one is refused in
        # place), then signs in with it.
        token = await mail_to(inbox[1], email, "verify")
        await page.goto(f"/#/verify/{token}")
        await page.get_by_label("Choose a password").fill("password123")
        await page.get_by_role("button", name="Verify and sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("not a common one")
        await page.screenshot(path=screenshots / "20-verify-choose-password.png")
        await page.get_by_label("Choose a password").fill(PASSWORD)
        await page.get_by_role("button", name="Verify and sign in").click()
        await expect(page.get_by_role("heading", name="Orders", level=1)).to_be_visible()
        await expect(page.locator(".account-email")).to_have_text(email)
        cookies = {c["name"]: c for c in await page.context.cookies()}
        assert cookies["ordersvc_session"]["httpOnly"] is True
        assert cookies["ordersvc_session"]["sameSite"] == "Lax"
        assert await page.evaluate("document.cookie.includes('ordersvc_session')") is False

        # Settings: two-factor sign-in with the app's secret, recovery codes shown once.
        await page.get_by_role("link", name="Settings").click()
        await page.get_by_label("Current password").nth(1).fill(PASSWORD)
        await page.get_by_role("button", name="Set up an authenticator app").click()
        await expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
        secret = await page.locator("#totp-secret").inner_text()
        await page.get_by_label("The 6-digit code the app shows").fill(totp.hotp(secret, totp.step_at(time.time())))
        await page.get_by_role("button", name="Turn on").click()
        await expect(page.locator("#recovery-codes li")).to_have_count(10)
        recovery = (await page.locator("#recovery-codes li").first.inner_text()).strip()

        # An API key with a name, shown once, used against the legacy endpoint.
        await page.get_by_label("Name (what the key is for)").fill("journey script")
        await page.get_by_role("button", name="Create an API key").click()
        key = (await page.locator("#new-api-key").inner_text()).strip()
        await expect(page.locator("#api-key-list li")).to_have_count(1)
        await expect(page.locator("#api-key-list li")).to_contain_text("journey script")
        await page.screenshot(path=screenshots / "21-settings.png", full_page=True)
        async with httpx.AsyncClient(base_url=mailing_server.base_url) as client:
            legacy = await client.post("/api", json={"action": "balance", "key": key})
        assert legacy.text == '{"balance": 0.00}'

        # Sign out; signing in again asks for the second factor (a recovery code works once).
        await page.get_by_role("button", name="Sign out", exact=True).click()
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_label("Authenticator code")).to_be_focused()
        await page.get_by_label("Authenticator code").fill(recovery)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_role("heading", name="Orders", level=1)).to_be_visible()

    async def test_a_reset_that_revokes_the_keys_signs_every_browser_out(
        self, page: Any, mailing_server: ServerProcess, inbox: tuple[str, Inbox], screenshots: Path
    ) -> None:
        from playwright.async_api import expect

        email, new_password = unique_email("resetjourney"), "a fresh and different passphrase"
        async with httpx.AsyncClient(base_url=mailing_server.base_url) as client:
            assert (await client.post("/v1/auth/signup", json={"email": email})).status_code == 202
            body = {"token": await mail_to(inbox[1], email, "verify"), "password": PASSWORD}
            assert (await client.post("/v1/auth/verify-email", json=body)).status_code == 200
            signed_in = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
            cookie = {"Cookie": f"ordersvc_session={signed_in.cookies['ordersvc_session']}"}
            made = await client.post("/v1/api-keys", headers={**cookie, "X-CSRF-Token": signed_in.json()["csrf_token"]})
            key = made.json()["api_key"]

        # Signed in in the browser, the owner asks for a reset and revokes the keys with it.
        await page.goto("/")
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_role("heading", name="Orders", level=1)).to_be_visible()
        tab = await page.context.new_page()  # another tab of the same browser, as a mail link opens
        await tab.goto("/#/forgot")
        await tab.get_by_label("Email").fill(email)
        await tab.get_by_role("button", name="Send a reset link").click()
        await expect(tab.get_by_role("status")).to_contain_text("reset link is on its way")
        await tab.goto(f"/#/reset/{await mail_to(inbox[1], email, 'reset', seen=1)}")
        await tab.get_by_label("New password", exact=True).fill(new_password)
        await expect(tab.get_by_label("Also revoke all API keys")).not_to_be_checked()
        await tab.get_by_label("Also revoke all API keys").check()
        await tab.screenshot(path=screenshots / "22-reset-revoke-keys.png")
        await tab.get_by_role("button", name="Set the new password").click()
        done = "Every API key is revoked and every browser is signed out."
        await expect(tab.get_by_role("status")).to_contain_text(done)
        await tab.close()

        async with httpx.AsyncClient(base_url=mailing_server.base_url) as client:
            legacy = await client.post("/api", json={"action": "balance", "key": key})
            assert legacy.json() == {"error": "Invalid key."}
            assert (await client.get("/v1/account", headers=cookie)).status_code == 401
        await page.reload()  # the first tab's session ended too
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(new_password)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_role("heading", name="Orders", level=1)).to_be_visible()
