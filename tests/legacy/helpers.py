from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.ledger import service as ledger
from ordersvc.money import format_usd
from ordersvc.pagination import PageRequest
from tests.support import Customer


async def call(client: httpx.AsyncClient, key: str | None, body: Any, **kwargs: Any) -> httpx.Response:
    """POST a JSON body to the legacy endpoint with the key in the URL, as the seed's clients do."""
    url = "/api" if key is None else f"/api?key={key}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return await client.post(url, content=content, headers=headers, **kwargs)


async def snapshot(maker: async_sessionmaker[AsyncSession], customer: Customer) -> tuple[str, int, int]:
    """Balance, number of payments and number of orders: what a refused request must not change."""
    async with maker() as session:
        balance = await ledger.get_balance(session, account_id=customer.account_id)
        payments = await ledger.list_payments(session, account_id=customer.account_id, page=PageRequest())
        from ordersvc.orders import service as orders

        order_page = await orders.list_orders(session, account_id=customer.account_id, page=PageRequest())
    return format_usd(balance), payments.total, order_page.total
