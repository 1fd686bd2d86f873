"""Every order, legacy and REST: the key check and the order in one autocommit statement
(`orders/sql/ordersvc_place_orders.sql`), whatever the recipient's consent and with or without an
idempotency key. It answers in the contract's order, and a refusal changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts import security
from ordersvc.accounts import service as accounts
from ordersvc.accounts.callers import ApiKeyCaller
from ordersvc.consent import service as consent
from ordersvc.emails import normalize_email
from ordersvc.ledger import service as ledger
from ordersvc.ledger.models import PaymentKind
from ordersvc.ops import ratelimit
from ordersvc.orders import batching
from ordersvc.orders import service as orders
from tests.conftest import MakeCustomer
from tests.legacy.helpers import call, snapshot
from tests.ops.conftest import app_client
from tests.orders.test_endpoints import auth
from tests.support import Customer, confirm_recipient, rate_limit_remaining, unique_email


@pytest.fixture
def confirmed(make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]):
    """A customer with a balance whose recipient has confirmed: its orders take the one-statement path."""

    async def make(balance: str = "10") -> tuple[Customer, str]:
        customer = await make_customer(balance=balance)
        to = unique_email("to")
        await confirm_recipient(sessionmaker, customer, to)
        return customer, to

    return make


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The order statements sent, in order: how many orders each carried."""
    sent: list[int] = []
    real = batching.db.fetch_autocommit

    async def counted(engine: Any, sql: str, *args: Any, late: Any = None) -> Any:
        if "ordersvc_place_orders" in sql:
            sent.append(len((*args, *late())[0]))
        return await real(engine, sql, *args, late=late)

    monkeypatch.setattr(batching.db, "fetch_autocommit", counted)
    return sent


def order(to: str, quantity: object = 1000) -> dict[str, object]:
    return {"action": "order", "email": to, "quantity": quantity}


class TestPlaced:
    async def test_the_order_its_event_and_its_debit_are_written_at_once(
        self, client: httpx.AsyncClient, confirmed, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await confirmed("10")
        response = await call(client, customer.api_key, order(to.upper(), "2500"))
        assert response.status_code == 200
        public_id = response.json()["order"]
        assert response.content == b'{"order":"' + public_id.encode() + b'"}'
        assert await snapshot(sessionmaker, customer) == ("7.50", 2, 1)
        async with sessionmaker() as session:
            row = (
                await session.execute(
                    sa.text(
                        "SELECT o.status, o.email, o.price_mills, p.amount_mills, e.reason, e.to_status"
                        " FROM orders o JOIN payments p ON p.order_id = o.id JOIN order_events e ON e.order_id = o.id"
                        " WHERE o.public_id = :id"
                    ),
                    {"id": public_id},
                )
            ).one()
            assert await ledger.verify(session) == []
        assert tuple(row) == ("pending", normalize_email(to.upper()), 2500, -2500, "placed", "pending")
        status = await call(client, customer.api_key, {"action": "status", "order": public_id})
        assert status.text == '{"status": "pending", "progress": 0, "remains": 2500}'

    async def test_every_recipient_and_an_idempotency_key_take_the_one_statement(
        self,
        client: httpx.AsyncClient,
        confirmed,
        sessionmaker: async_sessionmaker[AsyncSession],
        statements: list[int],
    ) -> None:
        customer, to = await confirmed()
        assert (await call(client, customer.api_key, order(to))).status_code == 200
        first_time = await call(client, customer.api_key, order(unique_email("new")))
        assert first_time.status_code == 200
        with_request_id = await call(client, customer.api_key, {**order(to), "request_id": "r-1"})
        assert with_request_id.status_code == 200
        replayed = await call(client, customer.api_key, {**order(to), "request_id": "r-1"})
        assert replayed.content == with_request_id.content
        assert statements == [1, 1, 1, 1]  # one statement each, nothing else
        statuses = await call(client, customer.api_key, {"action": "orders"})
        assert [o["status"] for o in statuses.json()["orders"]] == ["pending", "awaiting confirmation", "pending"]
        # One consent row per recipient: the confirmed one and the new one.
        async with sessionmaker() as session:
            consents = (
                await session.execute(
                    sa.text("SELECT count(*) FROM recipient_consents WHERE account_id = :a"),
                    {"a": customer.account_id},
                )
            ).scalar_one()
        assert consents == 2


class TestRest:
    async def test_placed_in_one_statement_with_the_contracts_answers(
        self,
        client: httpx.AsyncClient,
        confirmed,
        sessionmaker: async_sessionmaker[AsyncSession],
        statements: list[int],
    ) -> None:
        customer, to = await confirmed("10")
        placed = await client.post("/v1/orders", json={"email": to, "quantity": 1500}, headers=auth(customer))
        assert placed.status_code == 201
        body = placed.json()
        assert (body["email"], body["quantity"], body["price"], body["status"]) == (to, 1500, "1.50", "pending")
        fetched = await client.get(f"/v1/orders/{body['id']}", headers=auth(customer))
        assert fetched.json() == body
        forged = customer.api_key[:12] + ("A" if customer.api_key[12] != "A" else "B") + customer.api_key[13:]
        refused = await client.post(
            "/v1/orders", json={"email": to, "quantity": 500}, headers={"Authorization": f"Bearer {forged}"}
        )
        assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
        assert "WWW-Authenticate" in refused.headers
        poor = await client.post("/v1/orders", json={"email": to, "quantity": 50000}, headers=auth(customer))
        assert (poor.status_code, poor.json()["code"]) == (402, "insufficient_balance")
        keyed = await client.post(
            "/v1/orders",
            json={"email": to, "quantity": 500},
            headers={**auth(customer), "Idempotency-Key": "k-1"},
        )
        assert keyed.status_code == 201
        assert statements == [1, 1, 1, 1]  # the forged key and the poor order were refused by the statement
        assert await snapshot(sessionmaker, customer) == ("8.00", 3, 2)

    async def test_rest_parses_before_the_routes_dependencies_and_answers_byte_for_byte(
        self,
        client: httpx.AsyncClient,
        confirmed,
        sessionmaker: async_sessionmaker[AsyncSession],
        statements: list[int],
    ) -> None:
        """`OrderCreateRoute`: the usual request is parsed before FastAPI reads the route's
        parameters, and its answer is the one the route's response model writes. Anything the
        model refuses, or another content type, goes to the route as declared."""
        from ordersvc.orders import endpoints

        customer, to = await confirmed("10")
        fast = await client.post("/v1/orders", json={"email": to, "quantity": 500}, headers=auth(customer))
        with pytest.MonkeyPatch.context() as declared:
            declared.setattr(endpoints, "_parse", lambda request: _none())  # the route as declared
            full = await client.post(
                "/v1/orders", json={"email": to, "quantity": 500}, headers={**auth(customer), "Idempotency-Key": "b-1"}
            )
        assert statements == [1, 1]
        assert (fast.status_code, full.status_code) == (201, 201)
        assert fast.headers["content-type"] == full.headers["content-type"] == "application/json"
        # Same bytes but for the id and the time: the same fields, order and rendering.
        fast_body, full_body = fast.json(), full.json()
        assert list(fast_body) == list(full_body)
        assert fast.content.replace(fast_body["id"].encode(), b"ID").replace(
            fast_body["created"].encode(), b"T"
        ) == full.content.replace(full_body["id"].encode(), b"ID").replace(full_body["created"].encode(), b"T")
        # The X-API-Key header is a key too.
        by_header = await client.post(
            "/v1/orders", json={"email": to, "quantity": 500}, headers={"X-API-Key": customer.api_key}
        )
        assert by_header.status_code == 201
        assert statements == [1, 1, 1]

        # Refused by the model (a string quantity is not StrictInt), or sent as another type:
        # the route answers as declared, and the one statement is never tried.
        wrong = await client.post("/v1/orders", json={"email": to, "quantity": "500"}, headers=auth(customer))
        assert wrong.status_code == 422
        as_text = await client.post(
            "/v1/orders",
            content=b'{"email":"' + to.encode() + b'","quantity":500}',
            headers={**auth(customer), "Content-Type": "text/plain"},
        )
        assert (as_text.status_code, as_text.json()["code"]) == (415, "unsupported_media_type")  # the route wants JSON
        assert statements == [1, 1, 1]  # neither reached the order statement
        assert await snapshot(sessionmaker, customer) == ("8.50", 4, 3)


class TestRefusedInTheContractsOrder:
    async def test_a_wrong_secret_with_a_real_prefix_is_an_invalid_key(
        self, client: httpx.AsyncClient, confirmed, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await confirmed()
        forged = customer.api_key[:12] + ("A" if customer.api_key[12] != "A" else "B") + customer.api_key[13:]
        response = await call(client, forged, order(to))
        assert response.text == '{"error":"Invalid key."}'
        assert await snapshot(sessionmaker, customer) == ("10.00", 1, 0)

    async def test_a_revoked_key_and_a_disabled_account_are_refused_at_once(
        self, client: httpx.AsyncClient, confirmed, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await confirmed()
        async with sessionmaker.begin() as session:
            account = await accounts.get_account_by_email(session, email=customer.email)
            _, second_key = await accounts.create_api_key(session, account=account)
            await accounts.revoke_api_key(session, prefix=customer.api_key[:12])
        assert (await call(client, customer.api_key, order(to))).text == '{"error":"Invalid key."}'
        assert (await call(client, second_key, order(to))).status_code == 200
        async with sessionmaker.begin() as session:
            await security.set_disabled(session, email=customer.email, disabled=True)
        assert (await call(client, second_key, order(to))).text == '{"error":"Invalid key."}'
        assert await snapshot(sessionmaker, customer) == ("9.00", 2, 1)

    async def test_the_key_comes_before_the_email_and_the_quantity(
        self, client: httpx.AsyncClient, confirmed, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await confirmed()
        bad_key = "osk_" + "x" * 40
        assert (await call(client, bad_key, order("not-an-email"))).text == '{"error":"Invalid key."}'
        assert (await call(client, bad_key, order(to, 10))).text == '{"error":"Invalid key."}'
        assert (await call(client, customer.api_key, order(to, 10))).text.startswith('{"error":"Invalid quantity')
        assert (await call(client, customer.api_key, order("not-an-email"))).text.startswith('{"error":"Invalid')
        assert await snapshot(sessionmaker, customer) == ("10.00", 1, 0)

    async def test_insufficient_balance_changes_nothing(
        self, client: httpx.AsyncClient, confirmed, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await confirmed("1.499")
        assert (await call(client, customer.api_key, order(to, 1000))).status_code == 200
        refused = await call(client, customer.api_key, order(to, 500))
        assert refused.text == '{"error":"Insufficient balance."}'
        assert await snapshot(sessionmaker, customer) == ("0.499", 2, 1)

    async def test_an_opt_out_wins_over_a_confirmation(
        self, client: httpx.AsyncClient, confirmed, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer, to = await confirmed()
        async with sessionmaker.begin() as session:
            assert await consent.opt_out(session, email=to, source="recipient")
        assert (await call(client, customer.api_key, order(to))).text == '{"error":"Recipient has opted out."}'
        assert await snapshot(sessionmaker, customer) == ("10.00", 1, 0)


class TestLimits:
    async def test_the_rate_limit_applies_and_a_strangers_key_spends_nothing(
        self, confirmed, sessionmaker: async_sessionmaker[AsyncSession], statements: list[int]
    ) -> None:
        customer, to = await confirmed()
        stranger = customer.api_key[:12] + "Z" * (len(customer.api_key) - 12)
        async with app_client(rate_limit_per_second=0.001, rate_limit_burst=2) as (_, client):
            for _ in range(5):  # the owner's prefix, a wrong secret: another bucket
                refused = await call(client, stranger, order(to))
                assert refused.text == '{"error":"Invalid key."}'
                assert "RateLimit" not in refused.headers
            answers = [await call(client, customer.api_key, order(to)) for _ in range(3)]
        assert [rate_limit_remaining(a) for a in answers[:2]] == ["1", "0"]
        assert answers[2].text == '{"error":"Too many requests."}'
        # A key this process has not seen authenticated is checked before its token is taken;
        # then its orders take their token first; an empty bucket places nothing.
        assert statements == [1, 1]
        assert await snapshot(sessionmaker, customer) == ("8.00", 3, 2)

    async def test_every_order_takes_one_token(
        self, confirmed, sessionmaker: async_sessionmaker[AsyncSession], statements: list[int]
    ) -> None:
        customer, to = await confirmed()
        async with app_client(rate_limit_per_second=0.001, rate_limit_burst=5) as (_, client):
            first = await call(client, customer.api_key, order(to))
            unconfirmed = await call(client, customer.api_key, order(unique_email("new")))
        assert (rate_limit_remaining(first), rate_limit_remaining(unconfirmed)) == ("4", "3")
        assert statements == [1, 1]  # the new recipient's order too, one token each
        assert await snapshot(sessionmaker, customer) == ("8.00", 3, 2)

    async def test_a_key_shaped_like_a_session_bucket_spends_nothing(self, confirmed) -> None:
        """Buckets are named by the service (`key:...`, `session:<id>`), never by what a client
        sends as its key."""
        _, to = await confirmed()
        async with app_client(rate_limit_per_second=0.001, rate_limit_burst=2) as (app, client):
            for _ in range(3):
                legacy = await call(client, "session:1", order(to))
                rest = await client.post(
                    "/v1/orders", json={"email": to, "quantity": 500}, headers={"Authorization": "Bearer session:1"}
                )
                assert legacy.text == '{"error":"Invalid key."}'
                assert rest.status_code == 401
                assert "RateLimit" not in legacy.headers
                assert "RateLimit" not in rest.headers
            assert app.state.rate_limiter._buckets == {}  # no bucket was touched

    async def test_a_lock_held_past_the_time_limit_is_a_timeout_and_writes_nothing(
        self, confirmed, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """The statement commits itself, so the request's time limit cannot cancel it: what is
        left of it becomes the statement's lock_timeout."""
        customer, to = await confirmed("5")
        release = asyncio.Event()
        locked = asyncio.Event()

        async def hold() -> None:
            async with sessionmaker.begin() as session:
                await session.execute(
                    sa.text("SELECT 1 FROM accounts WHERE id = :id FOR UPDATE"), {"id": customer.account_id}
                )
                locked.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await locked.wait()
        try:
            async with app_client(request_timeout_seconds=0.5) as (_, client):
                answer = await call(client, customer.api_key, order(to))
                rest = await client.post("/v1/orders", json={"email": to, "quantity": 500}, headers=auth(customer))
        finally:
            release.set()
            await holder
        assert (answer.status_code, answer.text) == (200, '{"error":"Request timed out."}')
        assert (rest.status_code, rest.json()["code"]) == (503, "timeout")
        assert rest.headers["retry-after"] == "1"
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)


class TestAccountRowLockedLast:
    """Without an expiry to run, the statement reads the balance without a lock, writes the order,
    and locks the account row only for the debit. A balance debited meanwhile below what the
    statement decided on fails it (`OSBAL`, nothing written), and it goes again locking first."""

    async def debit_while_the_order_waits(
        self,
        client: httpx.AsyncClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        customer: Customer,
        to: str,
        debit_mills: int,
        request: dict[str, object],
    ) -> httpx.Response:
        """Hold the account row with a debit (as any balance move does), send the order, and
        commit the debit once the order's statement waits for the row."""
        async with sessionmaker() as session, session.begin():
            await ledger.post_payment(
                session, account_id=customer.account_id, kind=PaymentKind.DEBIT, amount_mills=-debit_mills,
                description="a concurrent debit",
            )  # fmt: skip
            answer = asyncio.create_task(call(client, customer.api_key, request))
            for _ in range(500):
                async with sessionmaker() as watcher:
                    waiting = (
                        await watcher.execute(
                            sa.text(
                                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                " AND query LIKE '%ordersvc_place_orders%'"
                            )
                        )
                    ).scalar_one()
                if waiting:
                    break
                await asyncio.sleep(0.01)
            assert waiting == 1, "the order statement never waited for the account row"
        return await answer

    async def test_a_balance_debited_below_the_order_meanwhile_refuses_it_and_writes_nothing(
        self, client: httpx.AsyncClient, confirmed, sessionmaker: async_sessionmaker[AsyncSession], statements
    ) -> None:
        customer, to = await confirmed("1")
        request = {**order(to, 500), "request_id": "lock-last-1"}
        answer = await self.debit_while_the_order_waits(client, sessionmaker, customer, to, 600, request)
        assert (answer.status_code, answer.text) == (200, '{"error":"Insufficient balance."}')
        assert statements == [1, 1]  # the first statement failed on the moved balance; the second locked first
        # The credit and the debit; no order, no debit of one, no idempotency record.
        assert await snapshot(sessionmaker, customer) == ("0.40", 2, 0)
        async with sessionmaker() as session:
            keys = await session.execute(
                sa.text("SELECT count(*) FROM idempotency_keys WHERE account_id = :id"), {"id": customer.account_id}
            )
            assert keys.scalar_one() == 0
            assert await ledger.verify(session) == []

    async def test_a_balance_that_still_covers_the_order_is_debited_in_the_same_statement(
        self, client: httpx.AsyncClient, confirmed, sessionmaker: async_sessionmaker[AsyncSession], statements
    ) -> None:
        customer, to = await confirmed("1")
        answer = await self.debit_while_the_order_waits(client, sessionmaker, customer, to, 400, order(to, 500))
        assert answer.status_code == 200
        assert "order" in answer.json()
        assert statements == [1]
        assert await snapshot(sessionmaker, customer) == ("0.10", 3, 1)

    async def test_a_new_recipients_order_refused_so_leaves_no_consent_request_and_no_message(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession],
        statements,
    ) -> None:  # fmt: skip
        customer = await make_customer(balance="1")
        to = unique_email("never-asked")
        answer = await self.debit_while_the_order_waits(client, sessionmaker, customer, to, 900, order(to, 500))
        assert (answer.status_code, answer.text) == (200, '{"error":"Insufficient balance."}')
        assert statements == [1, 1]
        async with sessionmaker() as session:
            written = await session.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM recipient_consents WHERE account_id = :id),"
                    " (SELECT count(*) FROM outbox WHERE to_email = ordersvc_mailbox_key(:to)),"
                    " (SELECT count(*) FROM recipient_mailboxes WHERE email = ordersvc_mailbox_key(:to))"
                ),
                {"id": customer.account_id, "to": to},
            )
            assert tuple(written.one()) == (0, 0, 0)
        assert await snapshot(sessionmaker, customer) == ("0.10", 2, 0)


def test_the_bucket_of_a_key_names_its_prefix_and_not_its_secret() -> None:
    secret = "0123456789abcdef" * 2
    bucket = ratelimit.key_bucket("osk_abcdefgh" + secret)
    assert bucket.startswith("key:osk_abcdefgh.")
    assert secret[:8] not in bucket
    assert bucket != ratelimit.key_bucket("osk_abcdefgh" + secret[::-1])


class TestGroupCommit:
    async def test_orders_in_flight_together_share_one_statement_and_are_each_decided_alone(
        self,
        app,
        confirmed,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        statements: list[int],
    ) -> None:
        batches = statements
        poor, to_poor = await confirmed("1.00")
        rich, to_rich = await confirmed("10")
        opted = unique_email("opted")
        await confirm_recipient(sessionmaker, rich, opted)
        async with sessionmaker.begin() as session:
            assert await consent.opt_out(session, email=opted, source="recipient")
        stranger = "osk_" + "q" * 43

        async def place(key: str, to: str, quantity: int = 500) -> object:
            try:
                return await orders.place(
                    app.state.engine, app.state.settings, caller=ApiKeyCaller(key), email=to, quantity=quantity
                )
            except Exception as exc:  # the refusal is the result under test
                return type(exc).__name__

        results = await asyncio.gather(
            place(poor.api_key, to_poor),
            place(rich.api_key, to_rich, 2000),
            place(poor.api_key, to_poor),
            place(stranger, to_rich),
            place(rich.api_key, opted),
            place(poor.api_key, to_poor),
            place(rich.api_key, unique_email("unconfirmed")),
        )
        assert batches[0] > 1  # they went together
        assert sum(batches) == 7
        kinds = [r if isinstance(r, str) else "placed" for r in results]
        # Two of the poor account's three 0.50 orders fit, in arrival order.
        assert kinds == [
            "placed",
            "placed",
            "placed",
            "InvalidApiKey",
            "RecipientOptedOut",
            "InsufficientBalance",
            "placed",  # not confirmed: awaiting confirmation, and the recipient is asked
        ]
        assert await snapshot(sessionmaker, poor) == ("0.00", 3, 2)
        assert await snapshot(sessionmaker, rich) == ("7.50", 3, 2)
        async with sessionmaker() as session:
            assert await ledger.verify(session) == []

    async def test_a_callers_orders_wait_for_its_statement_in_flight_and_others_do_not(
        self,
        app,
        confirmed,
        sessionmaker: async_sessionmaker[AsyncSession],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A statement in flight for a caller holds that account's row: the caller's next orders
        wait in the process and go together in one statement after it, while another caller's
        order goes at once in a statement of its own."""
        hot, to_hot = await confirmed("10")
        other, to_other = await confirmed("10")
        real = batching.db.fetch_autocommit
        sent: list[list[str]] = []  # each statement's callers' key prefixes, in order
        release = asyncio.Event()

        async def held(engine: Any, sql: str, *args: Any, late: Any = None) -> Any:
            if "ordersvc_place_orders" in sql:
                sent.append(list((*args, *late())[0]))
                if len(sent) == 1:
                    await release.wait()  # the first statement stays in flight
            return await real(engine, sql, *args, late=late)

        monkeypatch.setattr(batching.db, "fetch_autocommit", held)

        async def place(customer: Customer, to: str) -> str:
            placed = await orders.place(
                app.state.engine, app.state.settings, caller=ApiKeyCaller(customer.api_key), email=to, quantity=500
            )
            return placed.order.public_id

        first = asyncio.create_task(place(hot, to_hot))
        while not sent:
            await asyncio.sleep(0)
        waiting = [asyncio.create_task(place(hot, to_hot)) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert len(sent) == 1  # the hot caller's orders wait for its statement
        assert await place(other, to_other)  # another caller's order is not held up
        assert len(sent) == 2
        release.set()
        assert len({await first, *[await task for task in waiting]}) == 4
        hot_prefix = sent[0][0]
        assert [len(callers) for callers in sent] == [1, 1, 3]  # the three went together
        assert sent[2] == [hot_prefix] * 3
        assert sent[1] != [hot_prefix]
        assert await snapshot(sessionmaker, hot) == ("8.00", 5, 4)
        async with sessionmaker() as session:
            assert await ledger.verify(session) == []


async def _none() -> None:
    return None
