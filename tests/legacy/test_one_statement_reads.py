"""A read costs its SQL: the key is checked by the statement that reads (no key lookup of its
own, no BEGIN and no COMMIT), and a numbered page's count and window are that one statement,
so of one snapshot without a transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import service as accounts
from ordersvc.accounts.auth import UNAUTHORIZED_DETAIL
from tests.conftest import MakeCustomer
from tests.legacy.helpers import call
from tests.support import Customer


class Sent:
    """What the app sends its database: statements through SQLAlchemy (and its BEGINs), and
    statements straight through the driver (`db.fetch_autocommit`)."""

    def __init__(self) -> None:
        self.orm: list[str] = []
        self.driver: list[str] = []

    def clear(self) -> None:
        self.orm.clear()
        self.driver.clear()


@pytest.fixture
def sent(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    log = Sent()
    engine = app.state.engine.sync_engine

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        log.orm.append(sql)

    def begin(conn: Any) -> None:
        log.orm.append("BEGIN")

    real_fetch = asyncpg.Connection.fetch

    async def fetch(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        log.driver.append(query)
        return await real_fetch(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "fetch", fetch)
    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "begin", begin)
    try:
        yield log
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "begin", begin)


async def customer_with_history(make_customer: MakeCustomer, client: httpx.AsyncClient) -> Customer:
    customer = await make_customer(balance="10")
    for _ in range(3):
        response = await call(client, customer.api_key, {"action": "order", "email": "to@example.com", "quantity": 500})
        assert b'"order"' in response.content
    return customer


LEGACY_READS = [
    {"action": "balance"},
    {"action": "orders"},
    {"action": "orders", "page": 1, "per_page": 2},
    {"action": "orders", "page": 99},
    {"action": "payments"},
    {"action": "payments", "page": 2, "per_page": 1},
]


class TestLegacyReads:
    @pytest.mark.parametrize("body", LEGACY_READS, ids=lambda b: "-".join(str(v) for v in b.values()))
    async def test_a_read_is_one_statement_that_checks_its_key(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sent: Sent, body: dict[str, Any]
    ) -> None:
        customer = await customer_with_history(make_customer, client)
        sent.clear()
        response = await call(client, customer.api_key, body)
        assert b'"error"' not in response.content, response.content
        assert sent.orm == []
        assert len(sent.driver) == 1
        assert "ordersvc_caller_account(" in sent.driver[0]  # the key is checked in the statement

    async def test_the_page_is_counted_and_windowed_together(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await customer_with_history(make_customer, client)
        body = (await call(client, customer.api_key, {"action": "payments", "per_page": 3})).json()
        # The credit and three debits: the last page (2 of 2) holds the newest payment alone.
        assert (body["total"], body["page"], len(body["payments"])) == (4, 2, 1)
        assert body["payments"][0]["amount"] == -0.5
        body = (await call(client, customer.api_key, {"action": "payments", "page": 1, "per_page": 3})).json()
        assert [p["amount"] for p in body["payments"]] == [10.0, -0.5, -0.5]
        body = (await call(client, customer.api_key, {"action": "orders", "page": 10**30})).json()
        assert (body["orders"], body["page"], body["total"]) == ([], 10**30, 3)

    @pytest.mark.parametrize("action", ["balance", "orders", "payments"])
    async def test_a_revoked_key_or_a_disabled_account_is_refused(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        action: str,
    ) -> None:
        revoked, disabled = await make_customer(balance="1"), await make_customer(balance="1")
        for customer in (revoked, disabled):
            assert b'"error"' not in (await call(client, customer.api_key, {"action": action})).content
        async with sessionmaker.begin() as session:
            await accounts.revoke_api_key(session, prefix=revoked.api_key)
            await session.execute(
                sa.text("UPDATE accounts SET disabled_at = now() WHERE id = :id"), {"id": disabled.account_id}
            )
        for customer in (revoked, disabled):
            response = await call(client, customer.api_key, {"action": action})
            assert response.content == b'{"error":"Invalid key."}'

    @pytest.mark.parametrize(
        "body", [{"action": "orders", "page": 0}, {"action": "payments", "per_page": 101}, {"action": "nope"}]
    )
    async def test_an_invalid_key_is_refused_before_the_parameters(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, body: dict[str, Any]
    ) -> None:
        customer = await make_customer()
        wrong_key = customer.api_key[:-4] + ("aaaa" if not customer.api_key.endswith("aaaa") else "bbbb")
        assert (await call(client, wrong_key, body)).content == b'{"error":"Invalid key."}'
        refused = b'{"error":"Unknown action."}' if body["action"] == "nope" else b'{"error":"Invalid params."}'
        assert (await call(client, customer.api_key, body)).content == refused


def auth(customer: Customer) -> dict[str, str]:
    return {"Authorization": f"Bearer {customer.api_key}"}


class TestRestReads:
    @pytest.mark.parametrize("path", ["/v1/balance", "/v1/orders", "/v1/payments", "/v1/payments?kind=order&limit=1"])
    async def test_a_read_is_one_statement_that_checks_its_key(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sent: Sent, path: str
    ) -> None:
        customer = await customer_with_history(make_customer, client)
        sent.clear()
        response = await client.get(path, headers=auth(customer))
        assert response.status_code == 200, response.text
        assert sent.orm == []
        assert len(sent.driver) == 1
        assert "ordersvc_caller_account(" in sent.driver[0]  # the key is checked in the statement

    async def test_a_page_from_a_cursor_is_one_statement_too(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sent: Sent
    ) -> None:
        customer = await customer_with_history(make_customer, client)
        newest = (await client.get("/v1/orders", headers=auth(customer))).json()["data"]
        sent.clear()
        older = await client.get("/v1/orders", params={"starting_after": newest[0]["id"]}, headers=auth(customer))
        assert [o["id"] for o in older.json()["data"]] == [o["id"] for o in newest[1:]]
        newer = await client.get(
            "/v1/orders", params={"ending_before": newest[-1]["id"], "limit": 1}, headers=auth(customer)
        )
        assert ([o["id"] for o in newer.json()["data"]], newer.json()["has_more"]) == ([newest[1]["id"]], True)
        assert sent.orm == []
        assert len(sent.driver) == 2

    @pytest.mark.parametrize(
        ("path", "params"),
        [
            ("/v1/balance", {}),
            ("/v1/orders", {}),
            ("/v1/orders", {"starting_after": "00000000", "ending_before": "00000001"}),
            ("/v1/orders", {"created_gte": "0001-01-01T00:00:00+01:00"}),
            ("/v1/payments", {"starting_after": 1, "ending_before": 2}),
        ],
    )
    async def test_an_invalid_key_is_401_before_anything_else(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, path: str, params: dict[str, Any]
    ) -> None:
        customer = await make_customer()
        wrong_key = customer.api_key[:-4] + ("aaaa" if not customer.api_key.endswith("aaaa") else "bbbb")
        response = await client.get(path, params=params, headers={"Authorization": f"Bearer {wrong_key}"})
        assert response.status_code == 401
        assert response.json()["detail"] == UNAUTHORIZED_DETAIL
        if params:
            assert (await client.get(path, params=params, headers=auth(customer))).status_code == 422
