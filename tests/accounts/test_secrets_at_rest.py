"""Sessions' CSRF tokens under the installation's own secret, and the second factor at rest: TOTP
secrets sealed (a database copy alone signs nobody in), recovery codes salted and slow to try."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import totp
from tests.ops.conftest import app_client
from tests.secrets_support import (
    CSRF_COOKIE,
    OLD_DEFAULT_SECRET,
    PASSWORD,
    SESSION_COOKIE,
    account_that_signs_in,
    default_app,
    new_secret,
    old_csrf_token,
    sign_in,
)

pytestmark = pytest.mark.usefixtures("fresh_throttle")


async def stored_totp_secret(maker: async_sessionmaker[AsyncSession], email: str) -> str:
    async with maker() as session:
        row = await session.execute(sa.text("SELECT totp_secret FROM accounts WHERE email = :e"), {"e": email})
        return str(row.scalar_one())


async def stored_recovery_hashes(maker: async_sessionmaker[AsyncSession], email: str) -> list[bytes]:
    async with maker() as session:
        rows = await session.execute(
            sa.text(
                "SELECT code_hash FROM recovery_codes r JOIN accounts a ON a.id = r.account_id"
                " WHERE a.email = :e ORDER BY r.id"
            ),
            {"e": email},
        )
        return [bytes(h) for h in rows.scalars()]


async def enrol(client: httpx.AsyncClient, email: str) -> tuple[str, list[str], int]:
    """Sign in and turn TOTP on: the secret, the recovery codes, and the step of the code used."""
    assert (await sign_in(client, email)).status_code == 200
    csrf = {"X-CSRF-Token": client.cookies[CSRF_COOKIE]}
    started = await client.post("/v1/account/totp", json={"current_password": PASSWORD}, headers=csrf)
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    step = totp.step_at(time.time())
    confirmed = await client.post("/v1/account/totp/confirm", json={"code": totp.hotp(secret, step)}, headers=csrf)
    assert confirmed.status_code == 200, confirmed.text
    return secret, confirmed.json()["recovery_codes"], step


class TestCsrf:
    async def test_a_csrf_token_made_with_the_old_default_secret_is_refused(
        self, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        email = await account_that_signs_in(sessionmaker)
        async with default_app(tmp_path, monkeypatch) as (_, browser):
            assert (await sign_in(browser, email)).status_code == 200
            forged = old_csrf_token(OLD_DEFAULT_SECRET, browser.cookies[SESSION_COOKIE])
            refused = await browser.post("/v1/api-keys", headers={"X-CSRF-Token": forged})
            assert refused.status_code == 403, refused.text
            assert refused.json()["code"] == "csrf_failed"
            assert (await browser.get("/v1/api-keys")).json()["data"] == []
            made = await browser.post("/v1/api-keys", headers={"X-CSRF-Token": browser.cookies[CSRF_COOKIE]})
            assert made.status_code == 201

    @pytest.mark.parametrize("sent", ["", "zz" * 32, "0" * 64, "0" * 63, "\u0660\u0661" * 16])
    async def test_anything_but_the_token_is_refused(
        self, sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient, sent: str
    ) -> None:
        email = await account_that_signs_in(sessionmaker)
        assert (await sign_in(client, email)).status_code == 200
        refused = await client.post("/v1/api-keys", headers={"X-CSRF-Token": sent.encode()})
        assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed")

    async def test_signed_in_browsers_keep_their_csrf_token_across_a_rotation(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        old, new = new_secret(), new_secret()
        email = await account_that_signs_in(sessionmaker)
        async with app_client(secret_key=old) as (_, before):
            assert (await sign_in(before, email)).status_code == 200
            session_token, token = before.cookies[SESSION_COOKIE], before.cookies[CSRF_COOKIE]
        async with app_client(secret_key=new) as (_, without_fallback):
            without_fallback.cookies.set(SESSION_COOKIE, session_token)
            refused = await without_fallback.post("/v1/api-keys", headers={"X-CSRF-Token": token})
            assert refused.status_code == 403
        async with app_client(secret_key=new, secret_key_fallbacks=[old]) as (_, rotated):
            rotated.cookies.set(SESSION_COOKIE, session_token)
            made = await rotated.post("/v1/api-keys", headers={"X-CSRF-Token": token})
            assert made.status_code == 201, made.text


class TestTotpSecretAtRest:
    async def test_the_database_holds_no_totp_secret_in_the_clear(
        self, sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
    ) -> None:
        email = await account_that_signs_in(sessionmaker)
        secret, _, step = await enrol(client, email)
        stored = await stored_totp_secret(sessionmaker, email)
        assert secret not in stored
        assert secret.upper() not in stored.upper()
        assert base64.b32decode(secret + "=" * (-len(secret) % 8)) not in stored.encode()
        assert (await sign_in(client, email, totp_code=totp.hotp(secret, step + 1))).status_code == 200

    async def test_a_sealed_secret_copied_to_another_account_does_not_open(
        self, sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
    ) -> None:
        victim, intruder = await account_that_signs_in(sessionmaker), await account_that_signs_in(sessionmaker)
        secret, _, step = await enrol(client, victim)
        _, intruder_codes, _ = await enrol(client, intruder)
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE accounts SET totp_secret = (SELECT totp_secret FROM accounts WHERE email = :v)"
                        " WHERE email = :i"), {"v": victim, "i": intruder},
            )  # fmt: skip
        refused = await sign_in(client, intruder, totp_code=totp.hotp(secret, step + 1))
        assert (refused.status_code, refused.json()["code"]) == (401, "invalid_totp_code")
        # What no key opens leaves the recovery codes: the way back in (then enrol again).
        assert (await sign_in(client, intruder, totp_code=intruder_codes[0])).status_code == 200

    async def test_after_a_rotation_the_secret_opens_and_is_sealed_again_under_the_new_key(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        old, new = new_secret(), new_secret()
        email = await account_that_signs_in(sessionmaker)
        async with app_client(secret_key=old) as (_, before):
            secret, _, step = await enrol(before, email)
        sealed_before = await stored_totp_secret(sessionmaker, email)
        async with app_client(secret_key=new, secret_key_fallbacks=[old]) as (_, rotated):
            sealed_after = await stored_totp_secret(sessionmaker, email)  # at start-up
            assert sealed_after != sealed_before
            assert (await sign_in(rotated, email, totp_code=totp.hotp(secret, step + 1))).status_code == 200
        # Sealed under the new secret alone now: the fallback can go.
        from ordersvc.accounts import second_factor
        from ordersvc.keyring import Keyring

        async with sessionmaker() as session:
            account_id = (
                await session.execute(sa.text("SELECT id FROM accounts WHERE email = :e"), {"e": email})
            ).scalar_one()
        stored = await stored_totp_secret(sessionmaker, email)
        opened = second_factor.open_totp_secret(Keyring((new.encode(),)), account_id, stored)
        assert opened is not None
        assert (opened.secret, opened.resealed) == (secret, None)
        assert second_factor.open_totp_secret(Keyring((old.encode(),)), account_id, stored) is None

    async def test_plain_text_secrets_from_before_are_sealed_at_start_up_and_keep_working(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email = await account_that_signs_in(sessionmaker)
        secret = totp.new_secret()
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE accounts SET totp_secret = :s, totp_enabled_at = now() WHERE email = :e"),
                {"s": secret, "e": email},
            )
        async with app_client() as (_, started):
            assert secret not in await stored_totp_secret(sessionmaker, email)
            code = totp.hotp(secret, totp.step_at(time.time()))
            assert (await sign_in(started, email, totp_code=code)).status_code == 200


class TestRecoveryCodesAtRest:
    async def test_codes_are_stored_salted_and_not_as_their_bare_sha256(
        self, sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
    ) -> None:
        email = await account_that_signs_in(sessionmaker)
        _, codes, _ = await enrol(client, email)
        stored = await stored_recovery_hashes(sessionmaker, email)
        assert len(stored) == len(codes) == 10
        bare = {hashlib.sha256(c.replace("-", "").encode()).digest() for c in codes}
        assert not bare & set(stored)
        assert all(h.startswith(b"$argon2id$") for h in stored)
        assert (await sign_in(client, email, totp_code=codes[3])).status_code == 200

    async def test_the_same_code_hashes_differently_in_every_row(
        self, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from ordersvc.accounts import second_factor

        monkeypatch.setattr(second_factor.secrets, "token_hex", lambda n: "0123456789")
        first, second = await account_that_signs_in(sessionmaker), await account_that_signs_in(sessionmaker)
        async with app_client() as (_, client):
            for email in (first, second):
                _, codes, _ = await enrol(client, email)
                assert set(codes) == {"01234-56789"}
        hashes = await stored_recovery_hashes(sessionmaker, first) + await stored_recovery_hashes(sessionmaker, second)
        assert len(set(hashes)) == 20

    async def test_unsalted_codes_from_before_work_and_the_migration_hashes_them_again(
        self, sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
    ) -> None:
        import importlib.util

        email = await account_that_signs_in(sessionmaker)
        await enrol(client, email)
        async with sessionmaker.begin() as session:
            for which, code in (("min", b"abcde12345"), ("max", b"fffff00000")):
                await session.execute(
                    sa.text(f"UPDATE recovery_codes SET code_hash = :h WHERE id = (SELECT {which}(r.id)"
                            " FROM recovery_codes r JOIN accounts a ON a.id = r.account_id WHERE a.email = :e)"),
                    {"h": hashlib.sha256(code).digest(), "e": email},
                )  # fmt: skip
        # Rows written before 0013 (or by an older replica meanwhile) still work...
        assert (await sign_in(client, email, totp_code="fffff-00000")).status_code == 200
        spec = importlib.util.spec_from_file_location("m0013", "alembic/versions/0013_secrets_at_rest.py")
        assert spec is not None
        assert spec.loader is not None
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        async with sessionmaker.begin() as session:
            connection = await session.connection()
            assert await connection.run_sync(migration.rehash_unsalted_codes) >= 1
        assert all(h.startswith(b"$argon2id$") for h in await stored_recovery_hashes(sessionmaker, email))
        assert (await sign_in(client, email, totp_code="ABCDE-12345")).status_code == 200
        again = await sign_in(client, email, totp_code="abcde-12345")
        assert (again.status_code, again.json()["code"]) == (401, "invalid_totp_code")
