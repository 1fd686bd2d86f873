"""Account pre-hijacking (issue 14): someone signs up with a victim's address and a password of
their own, the victim later signs up and verifies, and the intruder's password must not sign in
(nor anything made with it outlive a reset). The password is chosen from the emailed link, so
verifying an address never blesses a password its owner may not have chosen; a reset ends every
session and, when asked, revokes every API key. Also: throttle rows past their window are pruned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from ordersvc.accounts import passwords, throttle
from ordersvc.accounts.models import Account, AuthThrottle
from ordersvc.outbox import mailer
from ordersvc.timestamps import utc_now
from tests.accounts.test_selfservice import PASSWORD, csrf, login, signed_up, token_in
from tests.consent.test_consent import messages_to
from tests.support import unique_email

pytestmark = pytest.mark.usefixtures("fresh_throttle")

INTRUDER = "the intruder typed this one"
OWNER = "the owner chose this one"
SESSION_COOKIE = "ordersvc_session"


NewClient = Callable[[], httpx.AsyncClient]


@pytest.fixture
async def new_client(app: FastAPI) -> AsyncIterator[NewClient]:
    """Clients of their own, one cookie jar each (one browser or script each)."""
    transport = httpx.ASGITransport(app=app)
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def newest_link(maker: async_sessionmaker[AsyncSession], email: str, route: str) -> str:
    mails = [m for m in await messages_to(maker, email) if f"#/{route}/" in m.body_text]
    assert mails, f"no #/{route}/ link mailed to {email}"
    return token_in(mails[-1], route)


async def past_the_resend_interval(maker: async_sessionmaker[AsyncSession], email: str) -> None:
    async with maker.begin() as session:
        await session.execute(
            sa.text("UPDATE account_tokens SET created_at = created_at - interval '2 minutes'"
                    " WHERE account_id = (SELECT id FROM accounts WHERE email = :e)"), {"e": email}
        )  # fmt: skip


class TestPreHijacking:
    async def test_the_intruders_sign_up_leads_nowhere_once_the_owner_verifies(
        self, new_client: NewClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        victim = unique_email("victim")
        intruder, owner = new_client(), new_client()
        # The intruder signs up with the victim's address and a password of theirs: refused,
        # sign-up takes no password (an older version stored it for the owner to verify later).
        planted = await intruder.post("/v1/auth/signup", json={"email": victim, "password": INTRUDER})
        assert planted.status_code == 422
        assert (await intruder.post("/v1/auth/signup", json={"email": victim})).status_code == 202
        # Before the link nobody can sign in, so nobody can make an API key either.
        assert (await login(intruder, victim, INTRUDER)).status_code == 401
        assert (await intruder.post("/v1/api-keys")).status_code == 401

        # The victim signs up too (the link is sent again) and follows it, choosing a password.
        await past_the_resend_interval(sessionmaker, victim)
        assert (await owner.post("/v1/auth/signup", json={"email": victim})).status_code == 202
        token = await newest_link(sessionmaker, victim, "verify")
        verified = await owner.post("/v1/auth/verify-email", json={"token": token, "password": OWNER})
        assert (verified.status_code, verified.json()["email"]) == (200, victim)

        # The intruder's password signs nothing in: no session, so no API key.
        refused = await login(intruder, victim, INTRUDER)
        assert (refused.status_code, refused.json()["code"]) == (401, "invalid_credentials")
        assert SESSION_COOKIE not in intruder.cookies
        assert (await intruder.post("/v1/api-keys")).status_code == 401
        assert (await login(owner, victim, OWNER)).status_code == 200
        assert (await owner.get("/v1/api-keys")).json()["data"] == []

    async def test_a_password_set_before_verification_never_signs_in(
        self, new_client: NewClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """An unverified account that already holds a password (an older version's sign-up left
        it, perhaps an intruder's): following the link does not make it usable, with or without
        a password; the one chosen at the link replaces it."""
        victim = unique_email("legacy")
        async with sessionmaker.begin() as session:
            session.add(Account(email=victim, password_hash=await passwords.hash_password(INTRUDER)))
        owner, intruder = new_client(), new_client()
        assert (await owner.post("/v1/auth/resend-verification", json={"email": victim})).status_code == 202
        token = await newest_link(sessionmaker, victim, "verify")

        # The link followed as an older dashboard or script does, with the token alone.
        await owner.post("/v1/auth/verify-email", json={"token": token})
        assert (await login(intruder, victim, INTRUDER)).status_code != 200
        # Followed with the owner's password: only that one signs in from now on.
        verified = await owner.post("/v1/auth/verify-email", json={"token": token, "password": OWNER})
        assert verified.status_code == 200
        assert (await login(intruder, victim, INTRUDER)).json()["code"] == "invalid_credentials"
        assert (await login(owner, victim, OWNER)).status_code == 200

    async def test_a_verification_link_cannot_set_the_password_once_the_address_is_verified(
        self, new_client: NewClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """A reset link verifies too; the verification link still in the mailbox is then spent."""
        email = unique_email("resetfirst")
        browser = new_client()
        await browser.post("/v1/auth/signup", json={"email": email})
        verify_token = await newest_link(sessionmaker, email, "verify")
        await browser.post("/v1/auth/password-reset", json={"email": email})
        reset = {"token": await newest_link(sessionmaker, email, "reset"), "password": OWNER}
        assert (await browser.post("/v1/auth/password-reset/confirm", json=reset)).status_code == 204
        late = await browser.post("/v1/auth/verify-email", json={"token": verify_token, "password": INTRUDER})
        assert (late.status_code, late.json()["code"]) == (400, "invalid_token")
        assert (await login(browser, email, INTRUDER)).status_code == 401
        assert (await login(browser, email, OWNER)).status_code == 200

    async def test_the_verification_and_a_reset_link_followed_at_once_both_answer(
        self, new_client: NewClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """Both lock the account before their token (one lock order): no deadlock, no 503; the
        reset may win (then the verification link is spent) or come second (then it resets)."""
        for n in range(4):
            email = unique_email(f"race{n}")
            browser = new_client()
            await browser.post("/v1/auth/signup", json={"email": email})
            await browser.post("/v1/auth/password-reset", json={"email": email})
            verify = {
                "token": await newest_link(sessionmaker, email, "verify"),
                "password": "chosen at the verification link",
            }
            reset = {"token": await newest_link(sessionmaker, email, "reset"), "password": OWNER}
            verified, was_reset = await asyncio.gather(
                browser.post("/v1/auth/verify-email", json=verify),
                browser.post("/v1/auth/password-reset/confirm", json=reset),
            )
            assert was_reset.status_code == 204
            assert verified.status_code in (200, 400), verified.text
            assert (await login(browser, email, OWNER)).status_code == 200  # the reset came last, or alone

    async def test_an_address_change_link_sets_no_password(
        self, new_client: NewClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        old, new = unique_email("movefrom"), unique_email("moveto")
        browser = new_client()
        await signed_up(browser, sessionmaker, old)
        await login(browser, old)
        body = {"current_password": PASSWORD, "new_email": new}
        assert (await browser.post("/v1/account/email", json=body, headers=csrf(browser))).status_code == 202
        token = await newest_link(sessionmaker, new, "verify")
        refused = await browser.post("/v1/auth/verify-email", json={"token": token, "password": INTRUDER})
        assert (refused.status_code, refused.json()["code"]) == (422, "password_not_expected")
        assert (await browser.get("/v1/account")).json()["email"] == old  # nothing changed
        assert (await browser.post("/v1/auth/verify-email", json={"token": token})).status_code == 200
        assert (await login(browser, new, INTRUDER)).status_code == 401
        assert (await login(browser, new)).status_code == 200  # the password it had


class TestResetEndsAccess:
    async def signed_in_with_keys(
        self, new_client: NewClient, sessionmaker: async_sessionmaker[AsyncSession], email: str
    ) -> tuple[list[httpx.AsyncClient], list[str]]:
        browsers = [new_client() for _ in range(3)]
        await signed_up(browsers[0], sessionmaker, email)
        for browser in browsers:
            assert (await login(browser, email)).status_code == 200
        keys = [(await browsers[0].post("/v1/api-keys", headers=csrf(browsers[0]))).json()["api_key"] for _ in "ab"]
        return browsers, keys

    async def reset(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], email: str, **extra: bool
    ) -> httpx.Response:
        await browser.post("/v1/auth/password-reset", json={"email": email})
        body = {"token": await newest_link(sessionmaker, email, "reset"), "password": OWNER, **extra}
        return await browser.post("/v1/auth/password-reset/confirm", json=body)

    async def test_a_reset_with_revocation_kills_every_key_and_every_session(
        self, new_client: NewClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("revokeall")
        browsers, keys = await self.signed_in_with_keys(new_client, sessionmaker, email)
        resetting = browsers[0]  # signed in itself: its own session ends too
        stale_cookie = resetting.cookies[SESSION_COOKIE]
        done = await self.reset(resetting, sessionmaker, email, revoke_api_keys=True)
        assert done.status_code == 204
        assert SESSION_COOKIE not in resetting.cookies  # cleared in the answer
        resetting.cookies.set(SESSION_COOKIE, stale_cookie)
        for browser in browsers:
            assert (await browser.get("/v1/account")).status_code == 401
        script = new_client()
        for key in keys:
            assert (await script.get("/v1/account", headers=bearer(key))).status_code == 401
            legacy = await script.post("/api", json={"action": "balance", "key": key})
            assert legacy.json() == {"error": "Invalid key."}
        signed_in = new_client()
        assert (await login(signed_in, email, OWNER)).status_code == 200
        listed = (await signed_in.get("/v1/api-keys")).json()["data"]
        assert [k["revoked"] is not None for k in listed] == [True, True]

    async def test_a_reset_without_revocation_ends_sessions_and_keeps_keys(
        self, new_client: NewClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("keepkeys")
        browsers, keys = await self.signed_in_with_keys(new_client, sessionmaker, email)
        assert (await self.reset(new_client(), sessionmaker, email)).status_code == 204
        for browser in browsers:
            assert (await browser.get("/v1/account")).status_code == 401
        script = new_client()
        for key in keys:
            assert (await script.get("/v1/account", headers=bearer(key))).status_code == 200

    async def test_revoke_api_keys_must_be_a_boolean(
        self, new_client: NewClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("oddflag")
        browsers, keys = await self.signed_in_with_keys(new_client, sessionmaker, email)
        await browsers[0].post("/v1/auth/password-reset", json={"email": email})
        body = {"token": await newest_link(sessionmaker, email, "reset"), "password": OWNER, "revoke_api_keys": "all"}
        answer = await browsers[0].post("/v1/auth/password-reset/confirm", json=body)
        assert answer.status_code == 422
        assert (await browsers[1].get("/v1/account")).status_code == 200  # nothing happened
        assert (await new_client().get("/v1/account", headers=bearer(keys[0]))).status_code == 200
        assert (await login(browsers[1], email, OWNER)).status_code == 401


class TestThrottlePruning:
    async def rows(self, maker: async_sessionmaker[AsyncSession], keys: list[str]) -> set[str]:
        async with maker() as session:
            found = await session.execute(sa.select(col(AuthThrottle.key)).where(col(AuthThrottle.key).in_(keys)))
            return set(found.scalars().all())

    async def add(self, maker: async_sessionmaker[AsyncSession], key: str, age: timedelta) -> None:
        async with maker.begin() as session:
            session.add(AuthThrottle(key=key, failures=3, window_start=utc_now() - age))

    async def test_the_mailers_housekeeping_deletes_rows_past_their_window(
        self, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        tag = unique_email("prune")
        stale = [f"ip:stale-{n}-{tag}" for n in range(3)]
        fresh = f"account:fresh-{tag}"
        for key in stale:
            await self.add(sessionmaker, key, throttle.THROTTLE_WINDOW + timedelta(seconds=1))
        await self.add(sessionmaker, fresh, throttle.THROTTLE_WINDOW - timedelta(minutes=1))
        await mailer.housekeeping(sessionmaker, app.state.settings)
        assert await self.rows(sessionmaker, [*stale, fresh]) == {fresh}

    async def test_a_round_deletes_a_bounded_batch(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with sessionmaker.begin() as session:  # other tests' stale rows first
            await throttle.prune_throttle(session)
        tag = unique_email("batch")
        stale = [f"mail:stale-{n}-{tag}" for n in range(3)]
        for key in stale:
            await self.add(sessionmaker, key, timedelta(hours=1))
        async with sessionmaker.begin() as session:
            assert await throttle.prune_throttle(session, limit=2) == 2
        assert len(await self.rows(sessionmaker, stale)) == 1

    async def test_a_pruned_key_counts_afresh(
        self, new_client: NewClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """Pruning forgets only what the window had forgotten already: a throttled account whose
        window has passed signs in, with or without its row."""
        email = unique_email("pruned")
        browser = new_client()
        await signed_up(browser, sessionmaker, email)
        for _ in range(throttle.ACCOUNT_FAILURES + 1):
            await login(browser, email, "a wrong guess here")
        assert (await login(browser, email)).status_code == 429
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.update(AuthThrottle)
                .where(col(AuthThrottle.key) == f"account:{email}")
                .values(window_start=utc_now() - throttle.THROTTLE_WINDOW)
            )
            assert await throttle.prune_throttle(session) >= 1
        assert await self.rows(sessionmaker, [f"account:{email}"]) == set()
        assert (await login(browser, email)).status_code == 200
