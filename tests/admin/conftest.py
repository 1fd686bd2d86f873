"""Operators for the console's tests: made as `operators create` makes them, then signed in
through the API (password from the one-time link, TOTP enrolled at the first sign-in)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import totp
from ordersvc.audit.service import Actor
from ordersvc.config import get_settings
from ordersvc.operators import service as operators
from ordersvc.operators.models import OperatorRole
from tests.support import unique_email

PASSWORD = "correct horse battery staple"


@dataclass
class SignedInOperator:
    email: str
    secret: str
    csrf: str
    client: httpx.AsyncClient

    @property
    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}


def code_now(secret: str, offset: int = 0) -> str:
    return totp.hotp(secret, totp.step_at(time.time()) + offset)


async def new_operator(maker: async_sessionmaker[AsyncSession], role: OperatorRole) -> tuple[str, str]:
    """A new operator (as `operators create` makes one) and the token of its one-time link."""
    email = unique_email(f"op-{role.value}")
    async with maker.begin() as session:
        link = await operators.create_operator(
            session, Actor.local_operator(), email=email, role=role, settings=get_settings()
        )
    return email, link.url.split("/set-password/", 1)[1]


async def enrol(client: httpx.AsyncClient, email: str, token: str) -> SignedInOperator:
    assert (
        await client.post("/v1/admin/auth/set-password", json={"token": token, "password": PASSWORD})
    ).status_code == 200
    login = await client.post("/v1/admin/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["stage"] == "enrol_totp"
    csrf = login.json()["csrf_token"]
    started = await client.post("/v1/admin/auth/totp/start", headers={"X-CSRF-Token": csrf})
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    confirmed = await client.post(
        "/v1/admin/auth/totp/confirm", json={"code": code_now(secret)}, headers={"X-CSRF-Token": csrf}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["stage"] == "signed_in"
    return SignedInOperator(email, secret, confirmed.json()["csrf_token"], client)


MakeOperator = Callable[[OperatorRole], Awaitable[SignedInOperator]]


@pytest.fixture
async def make_operator(app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[MakeOperator]:
    clients: list[httpx.AsyncClient] = []

    async def make(role: OperatorRole) -> SignedInOperator:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        clients.append(client)
        email, token = await new_operator(sessionmaker, role)
        return await enrol(client, email, token)

    yield make
    for c in clients:
        await c.aclose()
