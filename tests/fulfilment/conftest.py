from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.fulfilment import service as fulfilment
from tests.consent.test_consent import link, messages_to, order, recipient
from tests.support import Customer

ConfirmedOrder = Callable[..., Awaitable[str]]


@pytest.fixture
def confirmed_order(client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> ConfirmedOrder:
    """Place an order whose recipient then confirms (through the confirm page): it is pending."""

    async def place(customer: Customer, quantity: int = 1000, email: str | None = None) -> str:
        to = email or recipient()
        placed = (await order(client, customer, to, quantity)).json()
        if placed["status"] == "awaiting_confirmation":
            (message,) = await messages_to(sessionmaker, to)
            assert (await client.post(link(message, "confirm"))).status_code == 200
        return str(placed["id"])

    return place


@pytest.fixture
async def worker_token(sessionmaker: async_sessionmaker[AsyncSession]) -> Callable[[], Awaitable[str]]:
    async def make() -> str:
        async with sessionmaker.begin() as session:
            _, token = await fulfilment.create_worker(session, name=f"w-{uuid.uuid4().hex[:8]}")
        return token

    return make


@pytest.fixture
async def empty_queue(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Finish every claimable order left by other tests, so a test sees only its own."""
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.text("UPDATE orders SET status = 'canceled' WHERE status IN ('pending', 'in progress')")
        )
