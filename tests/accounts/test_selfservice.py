"""Self-service accounts: sign-up, verification, password and TOTP sign-in, browser sessions with
CSRF, password reset, email change, throttling, enumeration safety, and operators' disable."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import passwords, second_factor, security, throttle, totp
from ordersvc.accounts.models import Account
from ordersvc.consent import service as consent
from ordersvc.outbox import mailer
from ordersvc.outbox.models import OutboxMessage
from tests.conftest import MakeCustomer
from tests.consent.test_consent import messages_to
from tests.orders.test_endpoints import auth
from tests.support import Inbox, loopback_smtp, run_cli, text_of, unique_email

pytestmark = pytest.mark.usefixtures("fresh_throttle")

PASSWORD = "correct horse battery"
SESSION_COOKIE, CSRF_COOKIE = "ordersvc_session", "ordersvc_csrf"


def token_in(message: OutboxMessage, route: str) -> str:
    match = re.search(rf"#/{route}/([A-Za-z0-9_-]+)", message.body_text)
    assert match, message.body_text
    return match.group(1)


async def signed_up(client: httpx.AsyncClient, maker: async_sessionmaker[AsyncSession], email: str) -> None:
    """Sign up and verify through the mailed link, choosing the password there."""
    assert (await client.post("/v1/auth/signup", json={"email": email})).status_code == 202
    (mail,) = await messages_to(maker, email)
    assert (await verify(client, token_in(mail, "verify"))).status_code == 200


async def verify(client: httpx.AsyncClient, token: str, password: str | None = PASSWORD) -> httpx.Response:
    """Follow a verification link: a new account's needs the password chosen there."""
    body = {"token": token} if password is None else {"token": token, "password": password}
    return await client.post("/v1/auth/verify-email", json=body)


async def login(
    client: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    *,
    headers_cookie: str | None = None,
    **extra: str,
) -> httpx.Response:
    headers = {"Cookie": f"{SESSION_COOKIE}={headers_cookie}"} if headers_cookie else None
    return await client.post("/v1/auth/login", json={"email": email, "password": password, **extra}, headers=headers)


def session_cookie(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == SESSION_COOKIE:
            return rest.split(";", 1)[0]
    return None


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies[CSRF_COOKIE]}


@pytest.fixture
async def browser(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    """A client of its own: its cookie jar is one browser."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


class TestSignup:
    async def test_signup_verify_login_and_use_the_session(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("signup")
        answer = await browser.post("/v1/auth/signup", json={"email": email.upper()})
        assert answer.status_code == 202
        (mail,) = await messages_to(sessionmaker, email)  # normalised: one account per mailbox
        assert mail.purpose == "account"
        assert "#/verify/" in mail.body_text
        # Not usable before the link: the account has no password until it is chosen there.
        refused = await login(browser, email)
        assert (refused.status_code, refused.json()["code"]) == (401, "invalid_credentials")
        needed = await verify(browser, token_in(mail, "verify"), password=None)
        assert (needed.status_code, needed.json()["code"]) == (422, "password_required")
        verified = await verify(browser, token_in(mail, "verify"))  # the refusal spent nothing
        assert (verified.status_code, verified.json()["email"]) == (200, email)

        signed_in = await login(browser, email)
        assert signed_in.status_code == 200, signed_in.text
        cookie = next(c for c in signed_in.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
        assert signed_in.json()["csrf_token"] == browser.cookies[CSRF_COOKIE]
        account = await browser.get("/v1/account")
        assert (account.status_code, account.json()["email"], account.json()["balance"]) == (200, email, "0.00")

    async def test_the_same_answer_for_a_taken_address_and_its_owner_is_told(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], make_customer: MakeCustomer
    ) -> None:
        taken = (await make_customer()).email
        fresh = unique_email("fresh")
        one = await browser.post("/v1/auth/signup", json={"email": taken})
        two = await browser.post("/v1/auth/signup", json={"email": fresh})
        assert (one.status_code, one.content) == (two.status_code, two.content)
        (note,) = await messages_to(sessionmaker, taken)
        assert "already has an account" in note.body_text
        assert "#/verify/" not in note.body_text

    @pytest.mark.parametrize("password", ["short", "password123", "1234567890", "aaaaaaaaaaaa"])
    async def test_weak_passwords_are_refused_and_the_link_still_works(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], password: str
    ) -> None:
        email = unique_email("weak")
        await browser.post("/v1/auth/signup", json={"email": email})
        (mail,) = await messages_to(sessionmaker, email)
        answer = await verify(browser, token_in(mail, "verify"), password)
        assert (answer.status_code, answer.json()["code"]) == (422, "weak_password")
        assert (await login(browser, email, password)).status_code == 401
        assert (await verify(browser, token_in(mail, "verify"))).status_code == 200

    async def test_a_password_equal_to_the_address_is_refused(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("same")
        await browser.post("/v1/auth/signup", json={"email": email})
        (mail,) = await messages_to(sessionmaker, email)
        answer = await verify(browser, token_in(mail, "verify"), email)
        assert answer.json()["code"] == "weak_password"

    async def test_a_verification_link_works_once_and_expires(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("once")
        await browser.post("/v1/auth/signup", json={"email": email})
        (mail,) = await messages_to(sessionmaker, email)
        token = token_in(mail, "verify")
        assert (await verify(browser, token)).status_code == 200
        reused = await verify(browser, token, "another long password")
        assert (reused.status_code, reused.json()["code"]) == (400, "invalid_token")

        late = unique_email("late")
        await browser.post("/v1/auth/signup", json={"email": late})
        (mail,) = await messages_to(sessionmaker, late)
        async with sessionmaker.begin() as session:
            await session.execute(sa.text("UPDATE account_tokens SET expires_at = now() - interval '1 second'"
                                          " WHERE used_at IS NULL AND account_id = (SELECT id FROM accounts"
                                          " WHERE email = :e)"), {"e": late})  # fmt: skip
        expired = await verify(browser, token_in(mail, "verify"))
        assert (expired.status_code, expired.json()["code"]) == (410, "expired_token")
        bogus = await verify(browser, "x" * 43)
        assert bogus.json()["code"] == "invalid_token"

    async def test_resend_is_rate_limited_and_enumeration_safe(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("resend")
        await browser.post("/v1/auth/signup", json={"email": email})
        answers = [await browser.post("/v1/auth/resend-verification", json={"email": email}) for _ in range(3)]
        nobody = await browser.post("/v1/auth/resend-verification", json={"email": unique_email("nobody")})
        assert {(a.status_code, a.content) for a in [*answers, nobody]} == {(202, answers[0].content)}
        assert len(await messages_to(sessionmaker, email)) == 1  # within the minute: no new message
        async with sessionmaker.begin() as session:
            await session.execute(sa.text("UPDATE account_tokens SET created_at = created_at - interval '2 minutes'"))
        await browser.post("/v1/auth/resend-verification", json={"email": email})
        first, second = await messages_to(sessionmaker, email)
        # The newer link replaces the older one.
        old = await verify(browser, token_in(first, "verify"))
        assert old.json()["code"] == "invalid_token"
        newest = await verify(browser, token_in(second, "verify"))
        assert newest.status_code == 200


class TestSessions:
    async def test_login_refusals_do_not_tell_which_part_was_wrong(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("enum")
        await signed_up(browser, sessionmaker, email)
        wrong_password = await login(browser, email, "not the password at all")
        no_account = await login(browser, unique_email("ghost"), "not the password at all")
        assert wrong_password.status_code == no_account.status_code == 401
        # The same answer but for the request's own id.
        assert wrong_password.json() | {"request_id": "-"} == no_account.json() | {"request_id": "-"}
        assert wrong_password.json()["detail"] == "Invalid email or password."

    async def test_an_unknown_email_costs_a_password_check_too(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("timing")
        await signed_up(browser, sessionmaker, email)

        async def timed(address: str) -> float:
            started = time.perf_counter()
            await login(browser, address, "a wrong password here")
            return time.perf_counter() - started

        known = sorted([await timed(email) for _ in range(3)])[1]
        unknown = sorted([await timed(unique_email("ghost")) for _ in range(3)])[1]
        # Both run one Argon2id verification (tens of ms); without the dummy hash an unknown
        # address would answer in about a millisecond.
        assert unknown > known / 3

    async def test_a_new_session_id_at_every_sign_in(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("fixation")
        await signed_up(browser, sessionmaker, email)
        planted = "planted-by-an-attacker-0123456789abcdef"
        first = session_cookie(await login(browser, email, headers_cookie=planted))
        assert first not in (None, planted)
        second = session_cookie(await login(browser, email))
        assert second not in (None, first)

    async def test_changes_need_the_csrf_token_api_keys_do_not(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("csrf")
        await signed_up(browser, sessionmaker, email)
        await login(browser, email)
        refused = await browser.post("/v1/api-keys")
        assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed")
        forged = await browser.post("/v1/api-keys", headers={"X-CSRF-Token": "0" * 64})
        assert forged.json()["code"] == "csrf_failed"
        assert (await browser.get("/v1/api-keys")).json()["data"] == []  # nothing was created
        created = await browser.post("/v1/api-keys", headers=csrf(browser))
        assert created.status_code == 201
        key = created.json()["api_key"]
        # The key works for scripts, without cookies or CSRF: here the legacy endpoint.
        async with httpx.AsyncClient(transport=browser._transport, base_url="http://testserver") as script:
            legacy = await script.post("/api", json={"action": "balance", "key": key})
            assert legacy.json() == {"balance": 0}
            assert (await script.post("/v1/api-keys", headers={"Authorization": f"Bearer {key}"})).status_code == 201

    async def test_sign_out_and_sign_out_everywhere(
        self,
        app,
        sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
    ) -> None:
        email = unique_email("logout")
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as one,
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as two,
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as three,
        ):
            await signed_up(one, sessionmaker, email)
            for browser in (one, two, three):
                assert (await login(browser, email)).status_code == 200
            sessions = (await one.get("/v1/auth/sessions")).json()["data"]
            assert len(sessions) == 3
            assert sum(s["current"] for s in sessions) == 1
            stolen = one.cookies[SESSION_COOKIE]
            assert (await one.post("/v1/auth/logout", headers=csrf(one))).status_code == 204
            assert SESSION_COOKIE not in one.cookies
            one.cookies.set(SESSION_COOKIE, stolen)  # a copy of the old cookie no longer works
            assert (await one.get("/v1/account")).status_code == 401
            assert (await two.get("/v1/account")).status_code == 200
            assert (await two.post("/v1/auth/logout-everywhere", headers=csrf(two))).status_code == 204
            assert (await three.get("/v1/account")).status_code == 401
            assert (await two.get("/v1/account")).status_code == 401

    async def test_an_expired_session_is_refused(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("expiry")
        await signed_up(browser, sessionmaker, email)
        expires = (await login(browser, email)).json()["expires"]
        assert expires.startswith(str((time.gmtime(time.time() + 14 * 86400)).tm_year))
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE browser_sessions SET expires_at = now() - interval '1 second' WHERE account_id ="
                        " (SELECT id FROM accounts WHERE email = :e)"), {"e": email}
            )  # fmt: skip
        assert (await browser.get("/v1/account")).status_code == 401

    async def test_failed_sign_ins_are_throttled_with_a_wait(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("throttle")
        await signed_up(browser, sessionmaker, email)
        for _ in range(throttle.ACCOUNT_FAILURES):
            assert (await login(browser, email, "wrong password 123")).status_code == 401
        # Even the right password waits now: a guesser cannot tell.
        throttled = await login(browser, email)
        assert (throttled.status_code, throttled.json()["code"]) == (429, "too_many_attempts")
        wait = int(throttled.headers["Retry-After"])
        assert 0 < wait <= throttle.THROTTLE_WINDOW.total_seconds() + 1
        assert throttled.json()["detail"] == f"Too many failed sign-ins. Try again in {wait} s."
        async with sessionmaker.begin() as session:  # the window passes
            await session.execute(
                sa.text("UPDATE auth_throttle SET window_start = window_start - interval '16 minutes'")
            )
        assert (await login(browser, email)).status_code == 200

    async def test_a_disabled_account_stops_at_once_and_its_orders_wait(
        self, browser: httpx.AsyncClient, client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession],
        make_customer: MakeCustomer,
    ) -> None:  # fmt: skip
        customer = await make_customer(balance="5")
        async with sessionmaker.begin() as session:
            account = await session.get_one(Account, customer.account_id)
            account.password_hash = await passwords.hash_password(PASSWORD)
        await login(browser, customer.email)
        assert (await browser.get("/v1/account")).status_code == 200
        result = run_cli("accounts", "disable", customer.email)
        assert result.returncode == 0, result.stderr
        assert (await browser.get("/v1/account")).status_code == 401
        assert (await client.get("/v1/account", headers=auth(customer))).status_code == 401
        legacy = await client.post("/api", json={"action": "balance", "key": customer.api_key})
        assert legacy.json() == {"error": "Invalid key."}
        refused = await login(browser, customer.email)
        assert (refused.status_code, refused.json()["code"]) == (403, "account_disabled")
        listed = json.loads(run_cli("accounts", "list", "--json").stdout)
        assert {"email": customer.email, "state": "disabled"}.items() <= next(
            a for a in listed if a["email"] == customer.email
        ).items()
        assert run_cli("accounts", "enable", customer.email).returncode == 0
        assert (await client.get("/v1/account", headers=auth(customer))).status_code == 200


class TestPasswordAndEmail:
    async def test_reset_by_link_ends_every_session_and_is_enumeration_safe(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("reset")
        await signed_up(browser, sessionmaker, email)
        await login(browser, email)
        known = await browser.post("/v1/auth/password-reset", json={"email": email})
        unknown = await browser.post("/v1/auth/password-reset", json={"email": unique_email("nobody")})
        assert (known.status_code, known.content) == (unknown.status_code, unknown.content)
        mail = (await messages_to(sessionmaker, email))[-1]
        token = token_in(mail, "reset")
        weak = await browser.post("/v1/auth/password-reset/confirm", json={"token": token, "password": "short"})
        assert weak.json()["code"] == "weak_password"
        new_password = "a brand new passphrase"
        done = await browser.post("/v1/auth/password-reset/confirm", json={"token": token, "password": new_password})
        assert done.status_code == 204
        assert (await browser.get("/v1/account")).status_code == 401  # sessions ended
        again = await browser.post("/v1/auth/password-reset/confirm", json={"token": token, "password": new_password})
        assert again.json()["code"] == "invalid_token"
        assert (await login(browser, email)).status_code == 401
        assert (await login(browser, email, new_password)).status_code == 200

    async def test_an_operator_account_gets_a_password_by_reset(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer()
        assert (await login(browser, customer.email, "anything at all 1")).status_code == 401
        await browser.post("/v1/auth/password-reset", json={"email": customer.email})
        token = token_in((await messages_to(sessionmaker, customer.email))[-1], "reset")
        await browser.post("/v1/auth/password-reset/confirm", json={"token": token, "password": PASSWORD})
        assert (await login(browser, customer.email)).status_code == 200

    async def test_change_password_needs_the_current_one_and_ends_other_sessions(
        self,
        app,
        sessionmaker: async_sessionmaker[AsyncSession],  # type: ignore[no-untyped-def]
    ) -> None:
        email = unique_email("change")
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as here,
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as there,
        ):
            await signed_up(here, sessionmaker, email)
            await login(here, email)
            await login(there, email)
            new = "another long passphrase"
            wrong = await here.post(
                "/v1/account/password",
                json={"current_password": "not it at all", "new_password": new},
                headers=csrf(here),
            )
            assert (wrong.status_code, wrong.json()["code"]) == (403, "wrong_password")
            ok = await here.post(
                "/v1/account/password", json={"current_password": PASSWORD, "new_password": new}, headers=csrf(here)
            )
            assert ok.status_code == 204
            assert (await here.get("/v1/account")).status_code == 200  # this one stays
            assert (await there.get("/v1/account")).status_code == 401
            assert (await login(there, email, new)).status_code == 200

    async def test_change_email_by_a_link_to_the_new_address(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        old, new = unique_email("old"), unique_email("new")
        await signed_up(browser, sessionmaker, old)
        await login(browser, old)
        body = {"current_password": PASSWORD, "new_email": new}
        assert (await browser.post("/v1/account/email", json=body, headers=csrf(browser))).status_code == 202
        (mail,) = await messages_to(sessionmaker, new)
        assert (await browser.get("/v1/account")).json()["email"] == old  # not before the link
        changed = await browser.post("/v1/auth/verify-email", json={"token": token_in(mail, "verify")})
        assert (changed.status_code, changed.json()["email"]) == (200, new)
        assert (await browser.get("/v1/account")).status_code == 401  # sessions ended
        assert (await login(browser, new)).status_code == 200


class TestTotp:
    async def enrol(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> tuple[str, str, list[str]]:
        email = unique_email("totp")
        await signed_up(browser, sessionmaker, email)
        await login(browser, email)
        wrong = await browser.post("/v1/account/totp", json={"current_password": "nope nope"}, headers=csrf(browser))
        assert wrong.json()["code"] == "wrong_password"
        answer = await browser.post("/v1/account/totp", json={"current_password": PASSWORD}, headers=csrf(browser))
        started = answer.json()
        secret = started["secret"]
        assert started["otpauth_uri"].startswith("otpauth://totp/ordersvc:")
        assert f"secret={secret}" in started["otpauth_uri"]
        bad = await browser.post("/v1/account/totp/confirm", json={"code": "000000"}, headers=csrf(browser))
        assert bad.json()["code"] == "invalid_totp_code"
        self.confirmed_step = totp.step_at(time.time())
        code = totp.hotp(secret, self.confirmed_step)
        codes = (await browser.post("/v1/account/totp/confirm", json={"code": code}, headers=csrf(browser))).json()
        assert len(codes["recovery_codes"]) == second_factor.RECOVERY_CODES
        return email, secret, codes["recovery_codes"]

    async def test_enrolled_sign_in_needs_a_code_that_works_once(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email, secret, _ = await self.enrol(browser, sessionmaker)
        needed = await login(browser, email)
        assert (needed.status_code, needed.json()["code"]) == (401, "totp_required")
        # The code that confirmed the enrolment cannot be replayed, whatever step the clock is at.
        replay = await login(browser, email, totp_code=totp.hotp(secret, self.confirmed_step))
        assert replay.json()["code"] in ("invalid_totp_code",)
        next_code = totp.hotp(secret, self.confirmed_step + 1)  # the window reaches it, now or 30 s on
        assert (await login(browser, email, totp_code=next_code)).status_code == 200
        again = await login(browser, email, totp_code=next_code)
        assert (again.status_code, again.json()["code"]) == (401, "invalid_totp_code")
        wrong_password = await login(browser, email, "wrong password here", totp_code="123456")
        assert wrong_password.json()["code"] == "invalid_credentials"

    async def test_recovery_codes_work_once_each(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email, _, codes = await self.enrol(browser, sessionmaker)
        assert (await login(browser, email, totp_code=codes[0])).status_code == 200
        assert (await login(browser, email, totp_code=codes[0])).json()["code"] == "invalid_totp_code"
        assert (await login(browser, email, totp_code=codes[1].upper())).status_code == 200

    async def test_turning_it_off_needs_the_password(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email, _, codes = await self.enrol(browser, sessionmaker)
        await login(browser, email, totp_code=codes[0])
        body = {"current_password": "x" * 12}
        refused = await browser.post("/v1/account/totp/disable", json=body, headers=csrf(browser))
        assert refused.status_code == 403
        assert (await browser.get("/v1/account/security")).json()["totp_enabled"] is True
        off = await browser.post("/v1/account/totp/disable", json={"current_password": PASSWORD}, headers=csrf(browser))
        assert off.status_code == 204
        assert (await login(browser, email)).status_code == 200


class TestTotpAlgorithm:
    def test_rfc_6238_vectors(self) -> None:
        # RFC 6238 appendix B, SHA-1 (secret "12345678901234567890"), truncated to 6 digits.
        secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        vectors = ((59, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037"))
        for unix_time, expected in vectors:
            assert totp.hotp(secret, totp.step_at(unix_time)) == expected

    def test_window_and_replay(self) -> None:
        secret = totp.new_secret()
        now = 1_700_000_000.0
        step = totp.step_at(now)
        assert totp.matching_step(secret, totp.hotp(secret, step - 1), now=now, after_step=None) == step - 1
        assert totp.matching_step(secret, totp.hotp(secret, step - 2), now=now, after_step=None) is None
        assert totp.matching_step(secret, totp.hotp(secret, step), now=now, after_step=step) is None
        assert totp.matching_step(secret, "12345", now=now, after_step=None) is None


class TestThrottlePerAddress:
    async def test_many_accounts_from_one_address_are_throttled(self, browser: httpx.AsyncClient) -> None:
        for _ in range(throttle.IP_FAILURES):
            assert (await login(browser, unique_email("spray"), "guess number one")).status_code == 401
        throttled = await login(browser, unique_email("spray"), "guess number one")
        assert (throttled.status_code, throttled.json()["code"]) == (429, "too_many_attempts")
        assert int(throttled.headers["Retry-After"]) > 0


@pytest.fixture
def mail_server() -> Iterator[tuple[str, Inbox]]:
    with loopback_smtp() as server:
        yield server


class TestAccountMail:
    async def test_delivered_over_smtp_even_to_a_suppressed_address(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], mail_server: tuple[str, Inbox]
    ) -> None:
        """An opt-out stops mail about other people's orders; the owner's own sign-up link still goes."""
        email = unique_email("suppressed")
        async with sessionmaker.begin() as session:
            await consent.suppress(session, email=email)
        await browser.post("/v1/auth/signup", json={"email": email})
        url, inbox = mail_server
        await mailer.send_due(sessionmaker, mailer.smtp_sender(url), "ordersvc <no-reply@example.com>", limit=500)
        delivered = [m for m in inbox.messages if m["To"] == email]
        assert len(delivered) == 1
        text = text_of(delivered[0])
        token = re.search(r"#/verify/([A-Za-z0-9_-]+)", text).group(1)  # type: ignore[union-attr]
        assert (await verify(browser, token)).status_code == 200


class TestHardening:
    async def test_signing_up_again_cannot_claim_an_unverified_address(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("claim")
        await browser.post("/v1/auth/signup", json={"email": email})
        async with sessionmaker.begin() as session:  # past the resend interval
            await session.execute(sa.text("UPDATE account_tokens SET created_at = created_at - interval '2 minutes'"))
        intruder = "the intruders own pass"
        refused = await browser.post("/v1/auth/signup", json={"email": email, "password": intruder})
        assert refused.status_code == 422  # sign-up takes no password at all
        again = await browser.post("/v1/auth/signup", json={"email": email})
        assert again.status_code == 202
        _, second = await messages_to(sessionmaker, email)  # the link again, to the owner's mailbox
        assert (await verify(browser, token_in(second, "verify"))).status_code == 200
        assert (await login(browser, email, intruder)).status_code == 401
        assert (await login(browser, email)).status_code == 200

    async def test_spellings_of_one_address_share_its_throttle(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("spell")
        await signed_up(browser, sessionmaker, email)
        local, domain = email.split("@")
        fullwidth = domain.replace("e", "\uff45", 1)  # the same domain once normalised (IDNA)
        spellings = [email, email.upper(), f"{local}@{fullwidth}", f" {email} "]
        for n in range(throttle.ACCOUNT_FAILURES):
            assert (await login(browser, spellings[n % len(spellings)], "wrong guess here")).status_code == 401
        assert (await login(browser, spellings[2])).status_code == 429

    async def test_a_parallel_burst_gets_no_more_guesses_than_the_limit(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("burst")
        await signed_up(browser, sessionmaker, email)
        answers = await asyncio.gather(*(login(browser, email, f"guess number {n}") for n in range(20)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(401) == throttle.ACCOUNT_FAILURES
        assert statuses.count(429) == 20 - throttle.ACCOUNT_FAILURES

    async def test_a_stolen_key_cannot_guess_the_password(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer()
        async with sessionmaker.begin() as session:  # an account with a password, to be guessed
            await session.execute(
                sa.text("UPDATE accounts SET password_hash = :h WHERE id = :id"),
                {"h": await passwords.hash_password("the real password 42"), "id": customer.account_id},
            )
        body = {"current_password": "guess the password", "new_password": "a new long password"}
        for _ in range(throttle.ACCOUNT_FAILURES):
            answer = await client.post("/v1/account/password", json=body, headers=auth(customer))
            assert answer.json()["code"] == "wrong_password"
        throttled = await client.post("/v1/account/password", json=body, headers=auth(customer))
        assert (throttled.status_code, throttled.json()["code"]) == (429, "too_many_attempts")

    async def test_a_password_change_kills_links_already_mailed(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("killlinks")
        await signed_up(browser, sessionmaker, email)
        await browser.post("/v1/auth/password-reset", json={"email": email})
        reset = token_in((await messages_to(sessionmaker, email))[-1], "reset")
        await login(browser, email)
        body = {"current_password": PASSWORD, "new_password": "changed and long enough"}
        assert (await browser.post("/v1/account/password", json=body, headers=csrf(browser))).status_code == 204
        late = await browser.post("/v1/auth/password-reset/confirm", json={"token": reset, "password": "x" * 20})
        assert late.json()["code"] == "invalid_token"

    async def test_disabling_ends_sessions_for_good(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = unique_email("ended")
        await signed_up(browser, sessionmaker, email)
        await login(browser, email)
        async with sessionmaker.begin() as session:
            await security.set_disabled(session, email=email, disabled=True)
        async with sessionmaker.begin() as session:
            await security.set_disabled(session, email=email, disabled=False)
        assert (await browser.get("/v1/account")).status_code == 401

    async def test_client_input_never_breaks_the_session_routes(self, browser: httpx.AsyncClient) -> None:
        email = unique_email("input")
        huge = await browser.delete(f"/v1/auth/sessions/{2**70}")
        assert huge.status_code in (401, 422)
        assert (await browser.post("/v1/auth/resend-verification", json={"email": "not an address"})).status_code == 202
        bad = await login(browser, "not an address", "whatever it is")
        assert (bad.status_code, bad.json()["code"]) == (401, "invalid_credentials")
        assert (await browser.post("/v1/auth/password-reset", json={"email": email + "x"})).status_code == 202

    async def test_mail_requests_from_one_address_are_limited(
        self, browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        victim = unique_email("flooded")
        await signed_up(browser, sessionmaker, victim)
        for n in range(throttle.IP_MAIL_REQUESTS - 1):
            route = ("/v1/auth/password-reset", "/v1/auth/resend-verification")[n % 2]
            assert (await browser.post(route, json={"email": victim})).status_code == 202
        limited = await browser.post("/v1/auth/password-reset", json={"email": victim})
        assert (limited.status_code, limited.json()["code"]) == (429, "too_many_attempts")
        assert limited.json()["detail"].startswith("Too many requests from your address. Try again in ")
        # One reset link went out (one a minute), and it still works.
        (reset,) = [m for m in await messages_to(sessionmaker, victim) if "#/reset/" in m.body_text]
        body = {"token": token_in(reset, "reset"), "password": "fresh and long one"}
        answer = await browser.post("/v1/auth/password-reset/confirm", json=body)
        assert answer.status_code == 204


class TestAccountWithoutPassword:
    async def test_a_passwordless_account_is_told_to_set_one_and_no_attempt_is_counted(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """An operator-made account signs in with its API key and has no password: asking for its
        current password is 409 `password_not_set` (with the way to set one), never 403
        `wrong_password`, and the sign-in throttle counts nothing."""
        customer = await make_customer()
        key = {"Authorization": f"Bearer {customer.api_key}"}
        security = (await client.get("/v1/account/security", headers=key)).json()
        assert security["has_password"] is False
        for path, body in [
            ("/v1/account/totp", {"current_password": "anything"}),
            ("/v1/account/totp/disable", {"current_password": "anything"}),
            ("/v1/account/password", {"current_password": "anything", "new_password": "a long new passphrase 42"}),
            ("/v1/account/email", {"current_password": "anything", "new_email": "elsewhere@example.com"}),
        ]:
            for _ in range(12):  # more than the throttle lets through
                answer = await client.post(path, json=body, headers=key)
                assert (answer.status_code, answer.json()["code"]) == (409, "password_not_set"), path
        assert "POST /v1/auth/password-reset" in answer.json()["detail"]
        async with sessionmaker() as session:
            counted = await session.scalar(
                sa.text("SELECT count(*) FROM auth_throttle WHERE key = :k"), {"k": f"account:{customer.email}"}
            )
        assert counted == 0
