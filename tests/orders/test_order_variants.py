"""Every consent state and idempotency case through the one order statement, with the rules of
the full path it replaced: a refusal writes nothing (no consent row, no message, no key), a pair
that said no or ran out is asked again, a request whose links expired before the sweep is
expired by the order that finds it, and a replay comes before every other check."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc import db
from ordersvc.accounts.callers import ApiKeyCaller
from ordersvc.consent import service as consent
from ordersvc.consent import tokens
from ordersvc.emails import normalize_email
from ordersvc.keyring import keyring
from ordersvc.ledger import service as ledger
from ordersvc.orders import batching, lifecycle
from ordersvc.orders import service as orders
from tests.conftest import MakeCustomer
from tests.legacy.helpers import call, snapshot
from tests.orders.test_endpoints import auth
from tests.support import Customer, ServerProcess, confirm_recipient, place_as, unique_email
from tests.test_concurrency import two_servers as two_servers  # the fixture


async def rows(maker: async_sessionmaker[AsyncSession], sql: str, **params: object) -> list[tuple[object, ...]]:
    async with maker() as session:
        return [tuple(r) for r in (await session.execute(sa.text(sql), params)).all()]


async def consent_of(maker: async_sessionmaker[AsyncSession], customer: Customer, to: str) -> list[tuple[object, ...]]:
    return await rows(
        maker,
        "SELECT status, mailed_at IS NOT NULL FROM recipient_consents WHERE account_id = :a AND email = lower(:e)",
        a=customer.account_id,
        e=to,
    )


async def messages(maker: async_sessionmaker[AsyncSession], to: str) -> int:
    return len(await rows(maker, "SELECT id FROM outbox WHERE to_email = lower(:e)", e=to))


def legacy_order(to: str, quantity: int = 1000, request_id: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"action": "order", "email": to, "quantity": quantity}
    if request_id is not None:
        body["request_id"] = request_id
    return body


class TestRefusalsWriteNothing:
    async def test_a_new_recipients_order_refused_for_its_balance_leaves_no_request_and_no_key(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await make_customer(balance="0.40"), unique_email("new")
        refused = await call(client, customer.api_key, legacy_order(to, 500, request_id="r-1"))
        assert refused.content == b'{"error":"Insufficient balance."}'
        assert await consent_of(sessionmaker, customer, to) == []
        assert await messages(sessionmaker, to) == 0
        assert (
            await rows(sessionmaker, "SELECT key FROM idempotency_keys WHERE account_id = :a", a=customer.account_id)
            == []
        )
        # The key is unused: with the money there, the same request places the order.
        async with sessionmaker.begin() as session:
            await ledger.credit(session, email=customer.email, amount_mills=1000)
        placed = await call(client, customer.api_key, legacy_order(to, 500, request_id="r-1"))
        assert placed.json()["order"]
        assert await consent_of(sessionmaker, customer, to) == [("requested", True)]
        assert await messages(sessionmaker, to) == 1

    async def test_an_opted_out_address_is_refused_and_not_asked(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await make_customer(balance="5"), unique_email("gone")
        async with sessionmaker.begin() as session:
            await consent.opt_out(session, email=to, source="recipient")
        refused = await client.post("/v1/orders", json={"email": to, "quantity": 500}, headers=auth(customer))
        assert (refused.status_code, refused.json()["code"]) == (409, "recipient_opted_out")
        assert await consent_of(sessionmaker, customer, to) == []
        assert await messages(sessionmaker, to) == 0
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)


class TestAskedAgain:
    async def test_a_declined_pair_is_asked_again_when_the_mail_window_opens(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await make_customer(balance="5"), unique_email("no")
        await call(client, customer.api_key, legacy_order(to))
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text(
                    "UPDATE recipient_consents SET status = 'declined', decided_at = now() WHERE email = lower(:e)"
                ),
                {"e": to},
            )
        again = await client.post("/v1/orders", json={"email": to, "quantity": 500}, headers=auth(customer))
        assert again.json()["status"] == "awaiting_confirmation"
        # Asked again, but the address had a message within the day: the sweep sends it later.
        assert await consent_of(sessionmaker, customer, to) == [("requested", False)]
        assert await messages(sessionmaker, to) == 1
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text(
                    "UPDATE recipient_mailboxes SET last_mailed_at = now() - interval '25 hours'"
                    " WHERE email = lower(:e)"
                ),
                {"e": to},
            )
        assert await consent.mail_waiting_requests(sessionmaker) >= 1
        assert await consent_of(sessionmaker, customer, to) == [("requested", True)]
        assert await messages(sessionmaker, to) == 2

    async def test_an_order_that_finds_its_request_expired_before_the_sweep_expires_it_first(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await make_customer(balance="5"), unique_email("late")
        first = (await client.post("/v1/orders", json={"email": to, "quantity": 2000}, headers=auth(customer))).json()
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text(
                    "UPDATE recipient_consents SET expires_at = now() - interval '1 second' WHERE email = lower(:e)"
                ),
                {"e": to},
            )
        second = (await client.post("/v1/orders", json={"email": to, "quantity": 500}, headers=auth(customer))).json()
        assert second["status"] == "awaiting_confirmation"
        old = (await client.get(f"/v1/orders/{first['id']}/events", headers=auth(customer))).json()["data"]
        assert [(e["to_status"], e["reason"]) for e in old] == [
            ("awaiting_confirmation", "placed"),
            ("canceled", "confirmation expired"),
        ]
        # Refunded in full; the new order is debited; the pair asks again (the window is closed).
        assert await snapshot(sessionmaker, customer) == ("4.50", 4, 2)
        assert await consent_of(sessionmaker, customer, to) == [("requested", False)]
        async with sessionmaker() as session:
            assert await ledger.verify(session) == []


class TestIdempotency:
    async def test_a_replay_comes_before_the_recipients_opt_out_and_the_balance(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await make_customer(balance="1"), unique_email("replayed")
        headers = {**auth(customer), "Idempotency-Key": "once"}
        first = await client.post("/v1/orders", json={"email": to, "quantity": 1000}, headers=headers)
        async with sessionmaker.begin() as session:
            await consent.opt_out(session, email=to, source="recipient")
        again = await client.post("/v1/orders", json={"email": to, "quantity": 1000}, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.content == first.content  # the first answer, not today's status
        assert await messages(sessionmaker, to) == 1

    async def test_one_key_twice_in_one_statement_places_one_order(
        self, app, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await make_customer(balance="5"), unique_email("twice")

        async def place(quantity: int) -> object:
            try:
                return await orders.place(
                    app.state.engine,
                    app.state.settings,
                    caller=ApiKeyCaller(customer.api_key),
                    email=to,
                    quantity=quantity,
                    idempotency_key="same",
                )
            except Exception as exc:  # the refusal is the result under test
                return type(exc).__name__

        placed = await asyncio.gather(place(1000), place(1000), place(1200))
        first, second, third = placed
        assert isinstance(first, orders.PlacedOrder)
        assert isinstance(second, orders.PlacedOrder)
        assert (first.replayed, second.replayed, second.order.public_id) == (False, True, first.order.public_id)
        assert third == "IdempotencyConflict"
        assert await snapshot(sessionmaker, customer) == ("4.00", 2, 1)
        assert await messages(sessionmaker, to) == 1


class TestRaces:
    async def test_a_new_recipient_ordered_by_fifty_requests_of_several_accounts_is_asked_once(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        to = unique_email("popular")
        customers = [await make_customer(balance="20") for _ in range(5)]
        start = asyncio.Event()

        async def one(n: int) -> httpx.Response:
            customer = customers[n % len(customers)]
            await start.wait()
            if n % 2:
                return await call(client, customer.api_key, legacy_order(to, 500, request_id=f"k-{n}"))
            return await client.post("/v1/orders", json={"email": to, "quantity": 500}, headers=auth(customer))

        tasks = [asyncio.create_task(one(n)) for n in range(50)]
        await asyncio.sleep(0.05)
        start.set()
        answers = await asyncio.gather(*tasks)
        assert Counter(a.status_code for a in answers) == {200: 25, 201: 25}
        assert all("error" not in a.json() for a in answers)
        assert await messages(sessionmaker, to) == 1  # one address, one message, whichever account asked
        consents = await rows(
            sessionmaker, "SELECT account_id, status FROM recipient_consents WHERE email = lower(:e)", e=to
        )
        assert sorted(consents) == sorted((c.account_id, "requested") for c in customers)
        for customer in customers:
            assert await snapshot(sessionmaker, customer) == ("15.00", 11, 10)

    async def test_new_recipients_racing_their_opt_out_leave_no_open_order_and_every_mill_accounted(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="50")
        addresses = [unique_email("racing") for _ in range(10)]
        start = asyncio.Event()

        async def order(to: str) -> httpx.Response:
            await start.wait()
            return await call(client, customer.api_key, legacy_order(to, 500))

        async def opt_out(to: str) -> None:
            await start.wait()
            async with sessionmaker.begin() as session:
                await consent.opt_out(session, email=to, source="recipient")

        tasks = [asyncio.create_task(order(to)) for to in addresses for _ in range(3)]
        tasks += [asyncio.create_task(opt_out(to)) for to in addresses]
        await asyncio.sleep(0.05)
        start.set()
        await asyncio.gather(*tasks)
        open_orders = await rows(
            sessionmaker,
            "SELECT public_id FROM orders WHERE account_id = :a AND status <> 'canceled'",
            a=customer.account_id,
        )
        assert open_orders == []  # placed before its opt-out: canceled by it; after: refused
        placed = len(await rows(sessionmaker, "SELECT id FROM orders WHERE account_id = :a", a=customer.account_id))
        assert await snapshot(sessionmaker, customer) == ("50.00", 1 + 2 * placed, placed)
        async with sessionmaker() as session:
            assert await ledger.verify(session) == []


@pytest.mark.parametrize("api", ["legacy", "rest"])
async def test_idempotent_retries_to_a_new_recipient_racing_across_two_server_processes_place_one_order(
    api: str,
    two_servers: list[ServerProcess],
    make_customer: MakeCustomer,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    customer, to = await make_customer(balance="10"), unique_email("retried")
    limits = httpx.Limits(max_connections=40)
    async with (
        httpx.AsyncClient(base_url=two_servers[0].base_url, limits=limits, timeout=60) as a,
        httpx.AsyncClient(base_url=two_servers[1].base_url, limits=limits, timeout=60) as b,
    ):

        async def one(client: httpx.AsyncClient) -> httpx.Response:
            if api == "legacy":
                return await call(client, customer.api_key, legacy_order(to, 1000, request_id="retry-me"))
            headers = {**auth(customer), "Idempotency-Key": "retry-me"}
            return await client.post("/v1/orders", json={"email": to, "quantity": 1000}, headers=headers)

        answers = await asyncio.gather(*(one(a if n % 2 else b) for n in range(40)))
    ids = {a.json()["order" if api == "legacy" else "id"] for a in answers}
    assert len(ids) == 1
    assert await snapshot(sessionmaker, customer) == ("9.00", 2, 1)
    assert await messages(sessionmaker, to) == 1


async def test_a_decline_and_an_order_statement_expiring_another_accounts_request_do_not_deadlock(
    app, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decline holds its pair's consent row and its orders and is about to refund its account;
    an order statement holds that account's row (an order of its to another address) and expires
    another account's request to the same address. The decline locks only its own account's
    orders, so the statement is never left waiting on an order the decline holds."""
    n, m = await make_customer(balance="5"), await make_customer(balance="5")
    to, other = unique_email("declines"), unique_email("other")
    for customer, address in ((n, to), (n, other)):
        await confirm_recipient(sessionmaker, customer, address)
    open_order = await place_as(sessionmaker, n.account_id, email=to, quantity=1000)
    waiting = await place_as(sessionmaker, m.account_id, email=to, quantity=1000)
    assert (open_order.order.status, waiting.order.status) == ("pending", "awaiting confirmation")
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.text(
                "UPDATE recipient_consents SET expires_at = now() - interval '1 second'"
                " WHERE account_id = :a AND email = lower(:e)"
            ),
            {"a": m.account_id, "e": to},
        )
        consent_id = (
            await session.execute(
                sa.text("SELECT id FROM recipient_consents WHERE account_id = :a AND email = lower(:e)"),
                {"a": n.account_id, "e": to},
            )
        ).scalar_one()
    token = tokens.sign(
        keyring(app.state.settings), tokens.ConsentToken(consent_id, tokens.ConsentAction.DECLINE, 2**40)
    )
    locked, go = asyncio.Event(), asyncio.Event()
    real_cancel = lifecycle.cancel_locked

    async def cancel_after_the_statement_started(*args: Any, **kwargs: Any) -> Any:
        locked.set()  # the consent row and the orders are locked; the refund comes next
        await go.wait()
        return await real_cancel(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "cancel_locked", cancel_after_the_statement_started)

    async def decline() -> None:
        async with sessionmaker.begin() as session:
            await consent.decide(session, token=token, settings=app.state.settings)

    declining = asyncio.create_task(decline())
    await locked.wait()
    timing = batching.ConsentTiming(timedelta(hours=24), timedelta(hours=72))
    requests = [
        batching.OrderRequest(None, None, n.account_id, orders.new_public_id(), other, 500, 500, None, None, None),
        batching.OrderRequest(None, None, m.account_id, orders.new_public_id(), to, 500, 500, None, None, None),
    ]
    statement = asyncio.create_task(
        db.fetch_autocommit(app.state.engine, batching._PLACE_ORDERS, *batching._arguments(requests, 0.0, timing))
    )  # one statement for both, as a batch
    await asyncio.sleep(0.5)  # the statement has taken n's row and reached m's request
    go.set()
    rows = await asyncio.wait_for(statement, 30)
    await asyncio.wait_for(declining, 30)
    assert sorted(r[1] for r in rows) == ["placed", "placed"]
    async with sessionmaker() as session:
        statuses = dict(
            (
                await session.execute(
                    sa.text("SELECT public_id, status FROM orders WHERE public_id = ANY(:ids)"),
                    {"ids": [open_order.order.public_id, waiting.order.public_id]},
                )
            ).all()
        )
        assert await ledger.verify(session) == []
    assert statuses == {open_order.order.public_id: "canceled", waiting.order.public_id: "canceled"}


async def test_a_pair_a_concurrent_statement_created_first_is_read_again_and_asked_once(
    app, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    """Two statements order to the same new pair. The first has created its consent row and
    asked, and not committed; the second, creating the same row, waits for it, finds the row
    taken (nothing created), and reads every row again, locked: its order waits for the same
    request, and no second message goes."""
    customer = await make_customer(balance="5")
    to = normalize_email(unique_email("both"))
    timing = batching.ConsentTiming(timedelta(hours=24), timedelta(hours=72))

    def arguments() -> tuple[object, ...]:
        request = batching.OrderRequest(
            None, None, customer.account_id, orders.new_public_id(), to, 500, 500, None, None, None
        )
        return batching._arguments([request], 0.0, timing)

    first = await asyncpg.connect(database_url)
    try:
        transaction = first.transaction()
        await transaction.start()
        held = await first.fetch(batching._PLACE_ORDERS, *arguments())
        second = asyncio.create_task(db.fetch_autocommit(app.state.engine, batching._PLACE_ORDERS, *arguments()))
        await asyncio.sleep(0.5)
        assert not second.done()  # waiting on the first's consent row
        await transaction.commit()
    finally:
        await first.close()
    rows = await asyncio.wait_for(second, 30)
    assert [(r[1], r[4]) for r in (*held, *rows)] == [("placed", "awaiting confirmation")] * 2
    assert await consent_of(sessionmaker, customer, to) == [("requested", True)]  # asked by the first
    assert await messages(sessionmaker, to) == 1
    assert await snapshot(sessionmaker, customer) == ("4.00", 3, 2)  # the credit, two debits; two orders
