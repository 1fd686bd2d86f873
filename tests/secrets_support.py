"""Helpers of the secret-key tests: apps with a secret configuration of their own, accounts that
can sign in, and tokens made the way the service made them up to 10edb0a."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import passwords
from ordersvc.timestamps import utc_now
from tests.ops.conftest import app_client
from tests.support import unique_email

# The development default every installation signed with up to 10edb0a: public, in its source.
OLD_DEFAULT_SECRET = "development-only-secret-change-me"
PASSWORD = "correct horse battery"
SESSION_COOKIE, CSRF_COOKIE = "ordersvc_session", "ordersvc_csrf"


def new_secret() -> str:
    return secrets.token_urlsafe(48)


@asynccontextmanager
async def default_app(data_dir: Path, monkeypatch: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app configured as a fresh installation is: no ORDERSVC_SECRET_KEY (the test suite sets
    one for everything else), its own empty data directory."""
    monkeypatch.delenv("ORDERSVC_SECRET_KEY", raising=False)
    monkeypatch.delenv("ORDERSVC_SECRET_KEY_FALLBACKS", raising=False)
    async with app_client(data_dir=data_dir) as pair:
        yield pair


async def account_that_signs_in(maker: async_sessionmaker[AsyncSession]) -> str:
    """A verified account with PASSWORD, made in the database (no mail round trip)."""
    email = unique_email("secrets")
    password_hash = await passwords.hash_password(PASSWORD)
    async with maker.begin() as session:
        await session.execute(
            sa.text("INSERT INTO accounts (email, password_hash, email_verified_at) VALUES (:e, :p, :v)"),
            {"e": email, "p": password_hash, "v": utc_now()},
        )
    return email


async def sign_in(client: httpx.AsyncClient, email: str, **extra: str) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD, **extra})


def old_consent_token(secret: str, consent_id: int, action: str, expires: int) -> str:
    """A consent link's token as 10edb0a signed it: HMAC-SHA256 under the secret itself."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    payload = b64(f"{consent_id}.{action}.{expires}".encode())
    return f"{payload}.{b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())}"


def old_csrf_token(secret: str, session_token: str) -> str:
    """A session's CSRF token as 10edb0a made it."""
    return hmac.new(secret.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()
